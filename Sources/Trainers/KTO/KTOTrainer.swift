// KTO on the shared `TrainingLoop`: each labelled completion's log-ratio against the reference, and the reference
// point z₀ from the same prompts paired with mismatched completions (scored without gradients, as it is
// detached; each cut to its example's completion length), give `KTOLoss`'s ∂L/∂log π per completion; every completion token receives its sequence's gradient.
// Reference log-probs (own and mismatched completions) are computed once through the bare base: no second model.

import Datasets
import Distributed
import Foundation
import ModelExport
import Models
import TensorCore

public final class KTOTrainer: Trainer {
    public let config: KTOConfig
    public let loaded: LoadedModel
    public let data: KTOData
    public let adapter: LoRAAdapter?
    public let loop: TrainingLoop<KTOConfig>
    let padID: Int32
    var batches: IndexBatches
    let acts: LlamaActivations
    /// Reference log-probs of each training example's completion and of its mismatched completion.
    public private(set) var referenceTrain: [(own: Double, mismatched: Double)] = []
    public private(set) var referenceEval: [(own: Double, mismatched: Double)] = []
    public static let adapterName = "policy"

    public init(
        config: KTOConfig, model loaded: LoadedModel, data: KTOData, outputDirectory: URL, baseModel: String
    ) throws {
        try config.validate(for: loaded.model.config, trainingExamples: data.train.count, unit: "completions")
        self.config = config
        self.loaded = loaded
        self.data = data
        var rng = RNG(seed: config.seed)
        let target = try TrainableTarget(
            model: loaded.model, lora: config.training.lora, adapterName: Self.adapterName, seed: rng.next())
        adapter = target.adapter
        padID = loaded.padTokenID
        batches = IndexBatches(count: data.train.count, batchSize: config.batchSize, seed: config.seed)
        acts = try config.training.activations(
            for: loaded.model.config, batchSize: config.batchSize,
            length: (data.train + data.eval).map { $0.promptIDs.count + $0.completionIDs.count }.max()
                ?? config.maxLength)
        loop = TrainingLoop(
            config: config, groups: target.groups, batchesPerEpoch: batches.batchesInEpoch,
            outputDirectory: outputDirectory,
            identity: target.identity(baseModel: baseModel, tokenizer: loaded.tokenizer), rng: rng)
        let world = try World.current()  // the ranks of an mpirun share the reference pass
        referenceTrain = try logProbs(data.train, indices: Array(data.train.indices), adapter: nil, world: world)
        if !data.eval.isEmpty {
            referenceEval = try logProbs(data.eval, indices: Array(data.eval.indices), adapter: nil, world: world)
        }
    }

    /// Prompt + completion rows of `examples[indices]`, completion tokens scored; `mismatched` pairs each prompt
    /// with the previous example's completion instead.
    func labeled(_ examples: [EncodedUnpaired], _ indices: [Int], mismatched: Bool) -> LabeledBatch {
        LabeledBatch(
            prompts: indices.map { examples[$0].promptIDs },
            completions: indices.map {
                mismatched ? KTOData.mismatched(examples, $0) : examples[$0].completionIDs
            }, padID: padID)
    }

    /// Σ log p of each example's own and mismatched completion through `adapter` (no gradients), in batches; under
    /// mpirun `world` shares the batches out and gathers the results (the reference pass before training).
    func logProbs(
        _ examples: [EncodedUnpaired], indices: [Int], adapter: LoRAAdapter?, world: any Communicator = SingleProcess()
    ) throws -> [(own: Double, mismatched: Double)] {
        try world.shareRows(count: indices.count, chunk: config.batchSize) { range in
            let chunk = Array(indices[range])
            let own = try loaded.model.score(labeled(examples, chunk, mismatched: false), adapter: adapter, into: acts)
            let other = try loaded.model.score(labeled(examples, chunk, mismatched: true), adapter: adapter, into: acts)
            return chunk.indices.map { [own.sequenceLogProb(row: $0), other.sequenceLogProb(row: $0)] }
        }.map { (own: $0[0], mismatched: $0[1]) }
    }

    // MARK: TrainingObjective

    public var batchesPerEpoch: Int { batches.batchesInEpoch }
    public var dataPosition: DataLoaderPosition { batches.position }
    public func restore(dataPosition: DataLoaderPosition) throws {
        batches = IndexBatches(
            count: data.train.count, batchSize: config.batchSize, seed: config.seed, position: dataPosition)
    }

    public func accumulateGradients(step: Int, microBatches: Int, shard: Shard) throws -> MetricSums {
        let micro = (0..<microBatches).map { _ in batches.next() }
        let total = Double(micro.reduce(0) { $0 + $1.count })
        var sums = MetricSums()
        for (i, indices) in micro.enumerated() where shard.owns(i) {
            let n = Double(indices.count)
            // z₀ over the micro-batch, detached (Ethayarajh et al. 2024 eq. 7; TRL's KL term).
            let kl = try loaded.model.score(
                labeled(data.train, indices, mismatched: true), adapter: adapter, into: acts)
            let z0 = KTOLoss.referencePoint(
                policy: indices.indices.map { kl.sequenceLogProb(row: $0) },
                reference: indices.map { referenceTrain[$0].mismatched })
            acts.dropoutSeed = config.training.dropoutSeed(step: step, microBatch: i)
            let scored = try loaded.model.score(
                labeled(data.train, indices, mismatched: false), adapter: adapter, into: acts, training: true)
            let policy = indices.indices.map { scored.sequenceLogProb(row: $0) }
            let l = KTOLoss.evaluate(
                policy: policy, reference: indices.map { referenceTrain[$0].own },
                desirable: indices.map { data.train[$0].label }, referencePoint: z0, beta: config.beta,
                desirableWeight: config.desirableWeight, undesirableWeight: config.undesirableWeight)
            loaded.model.backward(scored, dLogProbs: scored.sequenceGradients(l.dPolicy, scale: n / total))
            sums.add("loss", l.loss * n, weight: n)
            for (k, v) in l.metrics { sums.add(k, v * n, weight: n) }
            // A micro-batch without one kind has no reward for it (nor a margin): weight 0, so every rank reports
            // the same names and no mean is made up.
            for k in ["rewards/chosen", "rewards/rejected", "rewards/margins"] where l.metrics[k] == nil {
                sums.add(k, 0, weight: 0)
            }
            let chosen = indices.indices.filter { data.train[indices[$0]].label }
            let rejected = indices.indices.filter { !data.train[indices[$0]].label }
            // Added even when empty (weight 0: no mean is reported), so every rank reports the same metric names.
            sums.add("logps/chosen", chosen.reduce(0) { $0 + policy[$1] }, weight: Double(chosen.count))
            sums.add("logps/rejected", rejected.reduce(0) { $0 + policy[$1] }, weight: Double(rejected.count))
            sums.tokens += Double(scored.batch.realTokens)
        }
        return sums
    }

    /// Loss and rewards over the eval set, z₀ estimated over the whole set.
    public func evaluate() throws -> Metrics? {
        guard !data.eval.isEmpty else { return nil }
        let policy = try logProbs(data.eval, indices: Array(data.eval.indices), adapter: adapter)
        let z0 = KTOLoss.referencePoint(
            policy: policy.map(\.mismatched), reference: referenceEval.map(\.mismatched))
        let l = KTOLoss.evaluate(
            policy: policy.map(\.own), reference: referenceEval.map(\.own), desirable: data.eval.map(\.label),
            referencePoint: z0, beta: config.beta, desirableWeight: config.desirableWeight,
            undesirableWeight: config.undesirableWeight)
        var m = ["eval_loss": l.loss, "eval_examples": Double(data.eval.count)]
        for (k, v) in l.metrics { m["eval_" + k] = v }
        return m
    }

    /// The adapter (PEFT, `adapter/`) or the full model (HF directory, `model/`).
    @discardableResult
    public func exportFinal() throws -> URL {
        try TrainableTarget.exportFinal(
            loaded: loaded, adapter: adapter, heads: [], baseModel: loop.identity.baseModel,
            to: loop.outputDirectory)
    }
}

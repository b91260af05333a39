// The DPO family on the shared `TrainingLoop`: each pair's chosen and rejected completions are scored in
// one padded batch through the policy (`LlamaModel.score`), `DPOLoss` turns the sequence log-probs into
// ∂L/∂log π per sequence, and every completion token of a sequence receives its sequence's gradient.
// Reference log-probs are computed once before training through the bare base (no adapter; for a full
// fine-tune, the initial weights) and cached: no second copy of the model is ever held.

import Datasets
import Distributed
import Foundation
import ModelExport
import Models
import TensorCore

public final class DPOTrainer: Trainer {
    public let config: DPOConfig
    public let loaded: LoadedModel
    public let data: PreferenceData
    public let adapter: LoRAAdapter?
    public let loop: TrainingLoop<DPOConfig>
    let padID: Int32
    var batches: IndexBatches
    let acts: LlamaActivations
    /// Pairs per forward/backward pass (`TrainingArguments.examplesPerPass`): the micro-batch, or an even share of
    /// it when its activations would exceed `passBudgetBytes`.
    public let pairsPerPass: Int
    /// Reference sequence log-probs (chosen, rejected) of every train and eval pair.
    public private(set) var referenceTrain: [(chosen: Double, rejected: Double)] = []
    public private(set) var referenceEval: [(chosen: Double, rejected: Double)] = []
    public static let adapterName = "policy"

    public init(
        config: DPOConfig, model loaded: LoadedModel, data: PreferenceData, outputDirectory: URL, baseModel: String
    ) throws {
        try config.validate(for: loaded.model.config, trainingExamples: data.train.count, unit: "pairs")
        self.config = config
        self.loaded = loaded
        self.data = data
        var rng = RNG(seed: config.seed)
        let target = try TrainableTarget(
            model: loaded.model, lora: config.training.lora, adapterName: Self.adapterName,
            seed: rng.next())
        adapter = target.adapter
        padID = loaded.padTokenID
        batches = IndexBatches(count: data.train.count, batchSize: config.batchSize, seed: config.seed)
        let length =
            (data.train + data.eval).map { $0.promptIDs.count + max($0.chosenIDs.count, $0.rejectedIDs.count) }.max()
            ?? config.maxLength
        // ORPO's NLL is a mean over the micro-batch's chosen tokens, which couples its pairs: one pass.
        pairsPerPass =
            config.lossType == .orpo
            ? config.batchSize
            : config.training.examplesPerPass(for: loaded.model.config, rowsPerExample: 2, length: length)
        acts = try config.training.activations(
            for: loaded.model.config, batchSize: 2 * pairsPerPass, length: length)
        loop = TrainingLoop(
            config: config, groups: target.groups, batchesPerEpoch: batches.batchesInEpoch,
            outputDirectory: outputDirectory,
            identity: target.identity(baseModel: baseModel, tokenizer: loaded.tokenizer), rng: rng)
        if config.lossType.usesReference {  // shared by the ranks of an mpirun
            let world = try World.current()
            referenceTrain = try sequenceLogProbs(data.train, adapter: nil, world: world)
            referenceEval = try sequenceLogProbs(data.eval, adapter: nil, world: world)
        }
    }

    /// Prompt + chosen rows, then prompt + rejected rows, completion tokens scored.
    func labeled(_ pairs: [EncodedPreference]) -> LabeledBatch {
        LabeledBatch(
            prompts: pairs.map(\.promptIDs) + pairs.map(\.promptIDs),
            completions: pairs.map(\.chosenIDs) + pairs.map(\.rejectedIDs), padID: padID)
    }

    /// Σ log p of each pair's chosen and rejected completion through `adapter` (no gradients), in passes; under
    /// mpirun `world` shares the batches out and gathers the results (the reference pass before training).
    public func sequenceLogProbs(
        _ pairs: [EncodedPreference], adapter: LoRAAdapter?, world: any Communicator = SingleProcess()
    ) throws -> [(chosen: Double, rejected: Double)] {
        try world.shareRows(count: pairs.count, chunk: pairsPerPass) { range in
            let chunk = Array(pairs[range])
            let scored = try loaded.model.score(labeled(chunk), adapter: adapter, into: acts)
            return chunk.indices.map {
                [scored.sequenceLogProb(row: $0), scored.sequenceLogProb(row: chunk.count + $0)]
            }
        }.map { (chosen: $0[0], rejected: $0[1]) }
    }

    func inputs(
        policy: [(chosen: Double, rejected: Double)], reference: [(chosen: Double, rejected: Double)],
        pairs: [EncodedPreference]
    ) -> DPOLoss.Inputs {
        let ref = reference.isEmpty ? policy.map { _ in (chosen: 0.0, rejected: 0.0) } : reference
        return DPOLoss.Inputs(
            policyChosen: policy.map(\.chosen), policyRejected: policy.map(\.rejected),
            referenceChosen: ref.map(\.chosen), referenceRejected: ref.map(\.rejected),
            chosenLengths: pairs.map { Double(max(1, $0.chosenIDs.count)) },
            rejectedLengths: pairs.map { Double(max(1, $0.rejectedIDs.count)) })
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
        // A micro-batch above the activation budget runs in passes; each pass's gradient is its share.
        for (seed, indices) in config.training.passes(
            of: micro, step: step, examplesPerPass: pairsPerPass, shard: shard)
        {
            let pairs = indices.map { data.train[$0] }, n = pairs.count
            acts.dropoutSeed = seed
            let scored = try loaded.model.score(labeled(pairs), adapter: adapter, into: acts, training: true)
            let policy = (0..<n).map {
                (chosen: scored.sequenceLogProb(row: $0), rejected: scored.sequenceLogProb(row: n + $0))
            }
            let reference = referenceTrain.isEmpty ? [] : indices.map { referenceTrain[$0] }
            let l = DPOLoss.evaluate(
                config.lossType, inputs(policy: policy, reference: reference, pairs: pairs), beta: config.beta,
                labelSmoothing: config.labelSmoothing, simpoGamma: config.simpoGamma)
            // Each completion token's ∂L/∂log p is its sequence's (Σ over tokens), reweighted to the step's mean.
            loaded.model.backward(
                scored,
                dLogProbs: scored.sequenceGradients(l.dPolicyChosen + l.dPolicyRejected, scale: Double(n) / total))
            let w = Double(n)
            sums.add("loss", l.loss * w, weight: w)
            for (k, v) in l.metrics { sums.add(k, v * w, weight: w) }
            sums.add("logps/chosen", policy.reduce(0) { $0 + $1.chosen }, weight: w)
            sums.add("logps/rejected", policy.reduce(0) { $0 + $1.rejected }, weight: w)
            sums.tokens += Double(scored.batch.realTokens)
        }
        return sums
    }

    public func evaluate() throws -> Metrics? {
        guard !data.eval.isEmpty else { return nil }
        let policy = try sequenceLogProbs(data.eval, adapter: adapter)
        let l = DPOLoss.evaluate(
            config.lossType, inputs(policy: policy, reference: referenceEval, pairs: data.eval),
            beta: config.beta, labelSmoothing: config.labelSmoothing, simpoGamma: config.simpoGamma)
        var m = ["eval_loss": l.loss, "eval_pairs": Double(data.eval.count)]
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

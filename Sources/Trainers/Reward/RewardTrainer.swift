// Reward modelling on the shared `TrainingLoop`: the backbone (a LoRA adapter on the frozen base, or the
// full weights) plus a `score` head read at the last real token of each sequence; each pair's chosen and
// rejected sequences run in one padded batch and `RewardLoss` (Bradley–Terry, optional centering and
// label smoothing) supplies ∂L/∂r. Saved as a PEFT adapter with `score` in `modules_to_save`, or as an HF
// `…ForSequenceClassification` directory.

import Datasets
import Foundation
import ModelExport
import Models
import TensorCore

public final class RewardTrainer: Trainer {
    public let config: RewardConfig
    public let loaded: LoadedModel
    public let data: PreferenceData
    public let adapter: LoRAAdapter?
    public let head: ScalarHead
    public let loop: TrainingLoop<RewardConfig>
    let padID: Int32
    var batches: IndexBatches
    let acts: LlamaActivations
    public static let adapterName = "reward"

    public init(
        config: RewardConfig, model loaded: LoadedModel, data: PreferenceData, outputDirectory: URL, baseModel: String
    ) throws {
        try config.validate(for: loaded.model.config, trainingExamples: data.train.count, unit: "pairs")
        self.config = config
        self.loaded = loaded
        self.data = data
        var rng = RNG(seed: config.seed)
        // transformers initialises `score` with N(0, initializer_range = 0.02), no bias.
        head = ScalarHead(
            name: HFCheckpoint.scoreHeadName, hiddenSize: loaded.model.config.hiddenSize, bias: false, seed: rng.next())
        let target = try TrainableTarget(
            model: loaded.model, lora: config.training.lora, adapterName: Self.adapterName,
            seed: rng.next(), heads: [head])
        adapter = target.adapter
        padID = loaded.padTokenID
        batches = IndexBatches(count: data.train.count, batchSize: config.batchSize, seed: config.seed)
        acts = config.training.activations(
            for: loaded.model.config, batchSize: 2 * config.batchSize, length: config.maxLength)
        loop = TrainingLoop(
            config: config, groups: target.groups, batchesPerEpoch: batches.batchesInEpoch,
            outputDirectory: outputDirectory,
            identity: target.identity(baseModel: baseModel, tokenizer: loaded.tokenizer), rng: rng)
    }

    // MARK: TrainingObjective

    public var batchesPerEpoch: Int { batches.batchesInEpoch }
    public var dataPosition: DataLoaderPosition { batches.position }
    public func restore(dataPosition: DataLoaderPosition) throws {
        batches = IndexBatches(
            count: data.train.count, batchSize: config.batchSize, seed: config.seed, position: dataPosition)
    }

    /// Chosen rows then rejected rows of `pairs`, right-padded.
    func batch(_ pairs: [EncodedPreference]) -> TokenBatch {
        TokenBatch(
            rows: pairs.map { $0.promptIDs + $0.chosenIDs } + pairs.map { $0.promptIDs + $0.rejectedIDs }, padID: padID)
    }

    public func accumulateGradients(step: Int, microBatches: Int) throws -> MetricSums {
        let micro = (0..<microBatches).map { _ in batches.next().map { data.train[$0] } }
        let total = Double(micro.reduce(0) { $0 + $1.count })
        var sums = MetricSums()
        for (i, pairs) in micro.enumerated() {
            let b = batch(pairs), n = pairs.count
            acts.isTraining = true
            acts.dropoutSeed = config.seed &+ UInt64(step) &* 1_000_003 &+ UInt64(i)
            let hidden = loaded.model.forward(b, adapter: adapter, into: acts)
            let rows = (0..<(2 * n)).map(b.lastRealToken(row:))
            let r = head.forward(hidden: hidden.pointer, rows: rows).map(Double.init)
            let l = RewardLoss.evaluate(
                chosen: Array(r[..<n]), rejected: Array(r[n...]),
                centerCoefficient: config.centerRewardsCoefficient, labelSmoothing: config.labelSmoothing)
            // The micro-batch's mean over its n pairs, reweighted to the mean over the step's pairs.
            let scale = Double(n) / total
            let dr = (l.dChosen + l.dRejected).map { Float($0 * scale) }
            let dHidden = Scratch.buffer("reward.dHidden", count: b.tokenCount * loaded.model.config.hiddenSize)
            dHidden.zero()
            head.backward(dValues: dr, hidden: hidden.pointer, rows: rows, dHidden: dHidden.pointer)
            loaded.model.backward(dOutput: dHidden.pointer, acts: acts)
            sums.add("loss", l.loss * Double(n), weight: Double(n))
            sums.add("accuracy", l.accuracy * Double(n), weight: Double(n))
            sums.add("margin", l.margin * Double(n), weight: Double(n))
            sums.add("mean_reward", l.meanReward * Double(n), weight: Double(n))
            sums.tokens += Double(b.rowLengths.reduce(0, +))
        }
        return sums
    }

    public func evaluate() throws -> Metrics? { data.eval.isEmpty ? nil : try evaluate(data.eval) }

    /// The model being trained, as a reward model (dropout off when it scores).
    public var rewardModel: RewardModel { RewardModel(loaded: loaded, adapter: adapter, head: head) }

    /// Loss, accuracy and mean margin over `pairs`, as `eval_…` metrics.
    public func evaluate(_ pairs: [EncodedPreference]) throws -> Metrics {
        let rewards = try rewardModel.scores(pairs, batchSize: config.batchSize)
        let l = RewardLoss.evaluate(chosen: rewards.map(\.chosen), rejected: rewards.map(\.rejected))
        return [
            "eval_loss": l.loss, "eval_accuracy": l.accuracy, "eval_margin": l.margin, "eval_mean_reward": l.meanReward,
            "eval_pairs": Double(pairs.count),
        ]
    }

    /// The adapter with its `score` head (PEFT, `adapter/`) or the full model as a sequence-classification
    /// directory (`model/`).
    public func exportFinal() throws -> URL {
        try TrainableTarget.exportFinal(
            loaded: loaded, adapter: adapter, heads: [head], baseModel: loop.identity.baseModel,
            to: outputDirectory)
    }
}

// Reward modelling on the shared `TrainingLoop`: the backbone (a LoRA adapter on the frozen base, or the
// full weights) plus a `score` head read at the last real token of each sequence; every response of a
// micro-batch's comparisons (a pair's two sides, a K-wise group's K completions) runs once in one padded batch
// and `RewardLoss` (Bradley–Terry over all ordered pairs, optional margin, centering and label smoothing)
// supplies ∂L/∂r. Saved as a PEFT adapter with `score` in `modules_to_save`, or as an HF
// `…ForSequenceClassification` directory.

import Datasets
import Distributed
import Foundation
import ModelExport
import Models
import TensorCore

public final class RewardTrainer: Trainer {
    public let config: RewardConfig
    public let loaded: LoadedModel
    public let data: ComparisonData
    public let adapter: LoRAAdapter?
    public let head: ScalarHead
    public let loop: TrainingLoop<RewardConfig>
    let padID: Int32
    var batches: IndexBatches
    let acts: LlamaActivations
    /// Comparisons per forward/backward pass (`TrainingArguments.examplesPerPass`): the micro-batch, or an even
    /// share of it when its activations would exceed `passBudgetBytes`.
    public let comparisonsPerPass: Int
    public static let adapterName = "reward"

    public init(
        config: RewardConfig, model loaded: LoadedModel, data: ComparisonData, outputDirectory: URL, baseModel: String
    ) throws {
        try config.validate(for: loaded.model.config, trainingExamples: data.train.count, unit: "comparisons")
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
        let widest = (data.train + data.eval).map(\.completionIDs.count).max() ?? 2
        let length =
            (data.train + data.eval).map { $0.promptIDs.count + ($0.completionIDs.map(\.count).max() ?? 0) }.max()
            ?? config.maxLength
        comparisonsPerPass = config.training.examplesPerPass(
            for: loaded.model.config, rowsPerExample: widest, length: length)
        acts = try config.training.activations(
            for: loaded.model.config, batchSize: widest * comparisonsPerPass, length: length)
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

    /// Every response of `comparisons` once (right-padded; a comparison's prompt computed once), and each
    /// comparison's rows best first.
    func batch(_ comparisons: [EncodedComparison]) -> (TokenBatch, [RewardLoss.Group]) {
        let (rows, prompts, groups) = RewardLoss.rows(comparisons)
        return (TokenBatch(rows: rows, shareable: prompts, padID: padID), groups)
    }

    public func accumulateGradients(step: Int, microBatches: Int, shard: Shard) throws -> MetricSums {
        let micro = (0..<microBatches).map { _ in batches.next().map { data.train[$0] } }
        let total = Double(micro.reduce(0) { $0 + $1.count })
        var sums = MetricSums()
        // A micro-batch above the activation budget runs in passes; each pass's gradient is its share.
        let passes = config.training.passes(
            of: micro, step: step, examplesPerPass: comparisonsPerPass, shard: shard)
        for (seed, comparisons) in passes {
            let (b, groups) = batch(comparisons)
            let n = Double(comparisons.count)
            acts.isTraining = true
            acts.dropoutSeed = seed
            let hidden = loaded.model.forward(b, adapter: adapter, into: acts)
            let rows = (0..<b.batchSize).map(b.lastRealToken(row:))
            let r = head.forward(hidden: hidden.pointer, rows: rows).map(Double.init)
            let l = RewardLoss.evaluate(
                rewards: r, groups: groups, centerCoefficient: config.centerRewardsCoefficient,
                labelSmoothing: config.labelSmoothing)
            // The pass's mean over its comparisons, reweighted to the mean over the step's comparisons.
            let dr = l.dRewards.map { Float($0 * n / total) }
            let dHidden = Scratch.buffer("reward.dHidden", count: b.tokenCount * loaded.model.config.hiddenSize)
            dHidden.zero()
            head.backward(dValues: dr, hidden: hidden.pointer, rows: rows, dHidden: dHidden.pointer)
            loaded.model.backward(dOutput: dHidden.pointer, acts: acts)
            sums.add("loss", l.loss * n, weight: n)
            sums.add("accuracy", l.accuracy * n, weight: n)
            sums.add("margin", l.margin * n, weight: n)
            sums.add("mean_reward", l.meanReward * n, weight: n)
            sums.tokens += Double(b.rowTokens)
        }
        return sums
    }

    public func evaluate() throws -> Metrics? { data.eval.isEmpty ? nil : try evaluate(data.eval) }

    /// The model being trained, as a reward model (dropout off when it scores).
    public var rewardModel: RewardModel { RewardModel(loaded: loaded, adapter: adapter, head: head) }

    /// Loss, accuracy and mean margin over `comparisons`, as `eval_…` metrics.
    public func evaluate(_ comparisons: [EncodedComparison]) throws -> Metrics {
        let l = try rewardModel.evaluate(comparisons, batchSize: config.batchSize)
        return [
            "eval_loss": l.loss, "eval_accuracy": l.accuracy, "eval_margin": l.margin, "eval_mean_reward": l.meanReward,
            "eval_pairs": Double(l.pairs),
        ]
    }

    /// Reward statistics of up to `normalization_samples` responses of the training comparisons (a seeded
    /// sample), scored by the model as trained.
    public func measureNormalization() throws -> RewardNormalization? {
        guard config.normalizationSamples > 0 else { return nil }
        var rows = RewardLoss.rows(data.train).rows
        var rng = RNG(seed: config.seed &+ 0x4e4f524d)
        for i in stride(from: rows.count - 1, to: 0, by: -1) { rows.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let sample = Array(rows.prefix(config.normalizationSamples))
        return RewardNormalization(
            rewards: try rewardModel.scores(sample, batchSize: config.batchSize),
            source: "\(sample.count) responses of the training comparisons")
    }

    /// The adapter with its `score` head (PEFT, `adapter/`) or the full model as a sequence-classification
    /// directory (`model/`), with `reward_model.json` (tokenizer fingerprint, reward statistics) beside it.
    @discardableResult
    public func exportFinal() throws -> URL {
        let dir = try TrainableTarget.exportFinal(
            loaded: loaded, adapter: adapter, heads: [head], baseModel: loop.identity.baseModel,
            to: outputDirectory)
        let card = RewardModelCard(
            baseModel: loop.identity.baseModel, tokenizerFingerprint: loop.identity.tokenizerFingerprint,
            normalization: try measureNormalization())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(card).write(
            to: dir.appendingPathComponent(CheckpointLayout.rewardModelFile), options: .atomic)
        return dir
    }
}

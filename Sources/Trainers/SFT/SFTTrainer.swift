// Supervised fine-tuning on the shared `TrainingLoop`: the data stream (`DataLoader` over encoded
// examples, packed or grouped by length), the step (forward through the adapter, `SFTLoss`, backward)
// and the export. LoRA on a frozen base (the default) or a full fine-tune.

import Datasets
import Distributed
import Foundation
import ModelExport
import Models
import TensorCore

public final class SFTTrainer: Trainer {
    public let config: SFTConfig
    public let loaded: LoadedModel
    public let data: SFTData
    /// The adapter being trained (nil for a full fine-tune).
    public let adapter: LoRAAdapter?
    public let loop: TrainingLoop<SFTConfig>
    let padID: Int32
    var loader: DataLoader
    let acts: LlamaActivations
    /// The adapter name used for LoRA runs.
    public static let adapterName = "default"

    public init(config: SFTConfig, model loaded: LoadedModel, data: SFTData, outputDirectory: URL, baseModel: String)
        throws
    {
        try config.validate(for: loaded.model.config, trainingExamples: data.train.count, unit: "examples")
        self.config = config
        self.loaded = loaded
        self.data = data
        var rng = RNG(seed: config.seed)
        let target = try TrainableTarget(
            model: loaded.model, lora: config.training.lora, adapterName: Self.adapterName,
            seed: rng.next())
        adapter = target.adapter
        padID = loaded.padTokenID
        var loaderConfig = DataLoaderConfig()
        loaderConfig.batchSize = config.batchSize
        loaderConfig.seed = config.seed
        loaderConfig.packing = config.packing ? .wrapped : .none
        loaderConfig.packedLength = config.maxLength
        loaderConfig.groupsByLength = config.groupByLength && !config.packing
        loader = try DataLoader(examples: data.train, config: loaderConfig)
        acts = try config.training.activations(
            for: loaded.model.config, batchSize: config.batchSize, length: config.maxLength)
        loop = TrainingLoop(
            config: config, groups: target.groups, batchesPerEpoch: loader.batchesInEpoch,
            outputDirectory: outputDirectory,
            identity: target.identity(baseModel: baseModel, tokenizer: loaded.tokenizer), rng: rng)
    }

    // MARK: TrainingObjective

    public var batchesPerEpoch: Int { loader.batchesInEpoch }
    public var dataPosition: DataLoaderPosition { loader.position }
    public func restore(dataPosition: DataLoaderPosition) throws {
        loader = try DataLoader(examples: data.train, config: loader.config, position: dataPosition)
    }

    public func accumulateGradients(step: Int, microBatches: Int, shard: Shard) throws -> MetricSums {
        let micro = (0..<microBatches).map { _ in loader.next() }
        let collated = micro.map { LabeledBatch(rows: $0.tokens, lossMask: $0.lossMask, padID: padID) }
        let counted = collated.reduce(0) { $0 + $1.counted }
        let model = loaded.model
        var total = SFTLoss.Sums(), tokens = 0.0, own = 0
        for (i, b) in collated.enumerated() where b.counted > 0 && shard.owns(i) {
            own += b.counted
            acts.isTraining = true
            acts.dropoutSeed = config.training.dropoutSeed(step: step, microBatch: i)
            let hidden = model.forward(b.batch, adapter: adapter, into: acts)
            let dHidden = Scratch.buffer("sft.dHidden", count: b.batch.tokenCount * model.config.hiddenSize)
            let s = SFTLoss.evaluate(
                hidden: hidden.pointer, targets: b.targets, normalizer: counted, model: model,
                dHidden: dHidden.pointer)
            model.backward(dOutput: dHidden.pointer, acts: acts)
            total.negLogProb += s.negLogProb
            total.correct += s.correct
            tokens += Double(b.realTokens)
        }
        var sums = MetricSums()
        sums.add("loss", total.negLogProb, weight: Double(own))
        sums.add("mean_token_accuracy", total.correct, weight: Double(own))
        sums.tokens = tokens
        return sums
    }

    public func evaluate() throws -> Metrics? { data.eval.isEmpty ? nil : evaluate(adapter: adapter) }

    /// Mean loss and token accuracy over the eval examples through `adapter` (nil = the bare base), dropout off.
    public func evaluate(adapter: LoRAAdapter?) -> Metrics {
        var sums = SFTLoss.Sums()
        let model = loaded.model
        var start = 0
        while start < data.eval.count {
            let chunk = Array(data.eval[start..<min(start + config.batchSize, data.eval.count)])
            start += chunk.count
            let b = LabeledBatch(rows: chunk.map(\.ids), lossMask: chunk.map(\.lossMask), padID: padID)
            acts.isTraining = false
            let hidden = model.forward(b.batch, adapter: adapter, into: acts)
            let s = SFTLoss.evaluate(
                hidden: hidden.pointer, targets: b.targets, normalizer: 1, model: model, dHidden: nil)
            sums.negLogProb += s.negLogProb
            sums.correct += s.correct
            sums.counted += s.counted
        }
        return [
            "eval_loss": sums.negLogProb / max(sums.counted, 1),
            "eval_mean_token_accuracy": sums.correct / max(sums.counted, 1),
            "eval_tokens": sums.counted,
        ]
    }

    public var usesActivationCheckpointing: Bool { acts.isCheckpointed }

    /// Writes the result: the LoRA adapter in PEFT format (`adapter/`) or the full model as a Hugging Face
    /// directory (`model/`). Returns its directory.
    @discardableResult
    public func exportFinal() throws -> URL {
        try TrainableTarget.exportFinal(
            loaded: loaded, adapter: adapter, heads: [], baseModel: loop.identity.baseModel,
            to: outputDirectory)
    }
}

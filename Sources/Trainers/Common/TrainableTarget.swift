// What a run trains on a model: a fresh LoRA adapter on the frozen base (registered on the model under
// a name) or the full weights, plus any scalar heads. It yields the loop's parameter groups, what
// checkpoints record (a LoRA checkpoint is a PEFT directory with the heads as `modules_to_save`), the
// activation buffers, and the final export.

import Distributed
import Foundation
import ModelExport
import Models
import TensorCore
import Tokenizers

public struct TrainableTarget: @unchecked Sendable {
    public let model: LlamaModel
    /// The adapter trained on the frozen base; nil for a full fine-tune.
    public let adapter: LoRAAdapter?
    public let heads: [ScalarHead]

    /// A new adapter named `adapterName` when `lora` is given (the base must be frozen), else the full
    /// weights (the base must be trainable).
    public init(model: LlamaModel, lora: LoRAConfig?, adapterName: String, seed: UInt64, heads: [ScalarHead] = [])
        throws
    {
        self.model = model
        self.heads = heads
        if let lora {
            guard !model.weights.isTrainable else {
                throw ConfigError.invalid(
                    field: "lora_rank", value: "\(lora.rank)",
                    expected: "a frozen base model (load it with trainable: false)")
            }
            adapter = try model.addAdapter(named: adapterName, config: lora, seed: seed)
        } else {
            guard model.weights.isTrainable else {
                throw ConfigError.invalid(
                    field: "lora_rank", value: "0", expected: "a trainable base model for a full fine-tune")
            }
            adapter = nil
        }
    }

    /// The adapter (or the full weights) and then each head, with checkpoint names that make a LoRA
    /// checkpoint a PEFT directory and a full one a model directory.
    public var groups: [ParameterGroup] {
        let main =
            adapter.map { ParameterGroup(name: "adapter", store: $0.store) }
            ?? ParameterGroup(name: "model", store: model.weights)
        let prefix = adapter == nil ? "" : PEFTAdapter.moduleKeyPrefix
        return [main] + heads.map { ParameterGroup(name: $0.name, store: $0.store, filePrefix: prefix) }
    }

    public func identity(baseModel: String, tokenizer: Tokenizer) -> CheckpointIdentity {
        guard let adapter else {
            return CheckpointIdentity(
                baseModel: baseModel, tokenizerFingerprint: tokenizer.fingerprint,
                weightsFile: CheckpointLayout.modelWeightsFile)
        }
        let peft = PEFTAdapter.configurationData(adapter.config, baseModel: baseModel, modulesToSave: heads.map(\.name))
        return CheckpointIdentity(
            baseModel: baseModel, tokenizerFingerprint: tokenizer.fingerprint,
            weightsFile: CheckpointLayout.adapterWeightsFile, extraFiles: [PEFTAdapter.configFileName: peft])
    }

    /// Writes the trained result under `directory`: the adapter (+ heads) as PEFT (`adapter/`), or the full
    /// model as a Hugging Face directory (`model/`, a sequence-classification one when it has a `score` head).
    public static func exportFinal(
        loaded: LoadedModel, adapter: LoRAAdapter?, heads: [ScalarHead], baseModel: String,
        to directory: URL
    ) throws -> URL {
        if let adapter {
            let dir = directory.appendingPathComponent(CheckpointLayout.finalAdapterDirectory)
            try PEFTAdapter.save(adapter, heads: heads, baseModel: baseModel, to: dir, overwrite: true)
            return dir
        }
        let dir = directory.appendingPathComponent(CheckpointLayout.finalModelDirectory)
        try HFCheckpoint.save(
            model: loaded.model, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate?.source,
            heads: heads, to: dir, overwrite: true)
        return dir
    }
}

extension TrainingArguments {
    /// Saved-activation memory above which activation checkpointing turns on by itself.
    public static let activationBudgetBytes = 2 << 30

    /// Training activations for micro-batches of up to `batchSize` × `length` tokens. Activation
    /// checkpointing is bit-identical, so it is switched on by itself when the saved activations would
    /// exceed `activationBudgetBytes` (e.g. TRL's defaults, 8 × 1024 tokens: ~5.7 GB).
    /// A micro-batch whose activations would not fit in memory even checkpointed is refused, naming the settings.
    public func activations(for c: LlamaConfig, batchSize: Int, length: Int) throws -> LlamaActivations {
        let perTokenFloats = Self.savedFloatsPerToken(c)
        let tokens = Double(batchSize) * Double(length), layers = Double(c.layerCount)
        let estimate = tokens * layers * perTokenFloats * 4
        let checkpointed = activationCheckpointing || estimate > Double(Self.activationBudgetBytes)
        // Checkpointed: each layer's input plus one layer's working set (and the logits' rows, chunked).
        let needed = checkpointed ? tokens * (layers * Double(c.hiddenSize) + perTokenFloats) * 4 : estimate
        guard needed <= Double(ProcessInfo.processInfo.physicalMemory) else {
            throw ConfigError.invalid(
                field: "batch_size × max_length", value: "\(batchSize) × \(length) tokens",
                expected: "activations that fit in memory (these need about \(Int(needed / Double(1 << 30))) GiB of"
                    + " \(ProcessInfo.processInfo.physicalMemory >> 30) GiB): lower --batch-size (use"
                    + " --gradient-accumulation-steps for a larger effective batch) or --max-length")
        }
        return LlamaActivations(config: c, batchSize: batchSize, length: length, checkpointed: checkpointed)
    }

    /// Floats one layer saves per token for backward (the layer's input, norms, q/k/v, attention output, the
    /// residual after attention, gate and up).
    static func savedFloatsPerToken(_ c: LlamaConfig) -> Double {
        Double(3 * c.hiddenSize + c.qDim * 2 + c.kvDim * 2 + 2 * c.intermediateSize + 2)
    }

    /// Saved-activation memory one pass of a micro-batch may hold when the trainer's loss is a mean over
    /// independent examples (reward comparisons, DPO pairs): a larger micro-batch runs as several passes whose gradients
    /// add up, the same loss and gradient up to float rounding, with no recomputation (checkpointing costs ~⅓
    /// more compute and remains the fallback for a single example above `activationBudgetBytes`). It keeps a full
    /// fine-tune's activations below its weights, gradients and AdamW moments (4 × 538 MB for SmolLM2-135M).
    public static let defaultPassBudgetBytes = 1 << 30

    /// Examples per pass for micro-batches of `batchSize` examples of up to `rowsPerExample` rows × `length`
    /// tokens: the micro-batch in as few passes as keep each under `passBudgetBytes`, the examples shared out
    /// evenly (8 comparisons that need 2 passes run as 4 + 4). `batchSize` itself when it fits.
    public func examplesPerPass(for c: LlamaConfig, rowsPerExample: Int, length: Int) -> Int {
        let bytesPerExample =
            Double(rowsPerExample * length) * Double(c.layerCount) * Self.savedFloatsPerToken(c) * 4
        let fit = max(1, Int(Double(passBudgetBytes) / bytesPerExample))
        let passes = (batchSize + fit - 1) / fit
        return (batchSize + passes - 1) / passes
    }

    /// The LoRA-dropout seed of micro-batch `microBatch` (and its pass `pass`) at `step`: a function of the
    /// position alone, so a resumed or sharded run draws the same masks.
    public func dropoutSeed(step: Int, microBatch: Int, pass: Int = 0) -> UInt64 {
        seed &+ UInt64(step) &* 1_000_003 &+ UInt64(microBatch) &+ UInt64(pass) << 32
    }

    /// The passes (`examplesPerPass` examples at most) of the micro-batches `shard` owns, each with its dropout
    /// seed.
    func passes<Example>(of micro: [[Example]], step: Int, examplesPerPass size: Int, shard: Shard) -> [(
        seed: UInt64, examples: [Example]
    )] {
        micro.enumerated().filter { shard.owns($0.offset) }.flatMap { i, examples in
            stride(from: 0, to: examples.count, by: size).map { start in
                (
                    dropoutSeed(step: step, microBatch: i, pass: start / size),
                    Array(examples[start..<min(start + size, examples.count)])
                )
            }
        }
    }
}

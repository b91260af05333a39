// The hyper-parameters every trainer shares (transformers' TrainingArguments, TRL's names): optimizer,
// schedule, batch and accumulation, cadence of logs / evaluation / checkpoints, data sampling, LoRA.
// Each default is written once, here (LoRA's and AdamW's come from `LoRAConfig` and `AdamWConfig`); a
// trainer whose TRL default differs sets it in its config's `init()`. Trainer configs embed this struct
// and flatten it into one JSON/YAML object (`TrainerConfig`), so a config file reads like TRL's.

import Foundation
import Models
import TensorCore

public struct TrainingArguments: Codable, Sendable, Equatable {
    /// Peak AdamW learning rate (TRL SFTConfig default).
    public var learningRate: Float = 2e-5
    /// `constant`, `linear` or `cosine` decay after warm-up.
    public var lrSchedulerType: LRSchedule.Kind = .linear
    /// Warm-up as a fraction of the total steps (used when `warmup_steps` is 0).
    public var warmupRatio: Float = 0
    public var warmupSteps: Int = 0
    public var numTrainEpochs: Int = 1
    /// Stop after this many optimizer steps (−1: run `num_train_epochs`).
    public var maxSteps: Int = -1
    /// Examples per micro-batch.
    public var batchSize: Int = 8
    public var gradientAccumulationSteps: Int = 1
    /// Global-norm clipping threshold over every trainable group (0 disables).
    public var maxGradNorm: Float = 1
    public var weightDecay: Float = AdamWConfig().weightDecay
    public var adamBeta1: Float = AdamWConfig().beta1
    public var adamBeta2: Float = AdamWConfig().beta2
    public var adamEpsilon: Float = AdamWConfig().epsilon
    public var seed: UInt64 = 42
    /// Examples longer than this many tokens are truncated (counted and reported).
    public var maxLength: Int = 1024
    public var loggingSteps: Int = 10
    /// Evaluate every this many steps when there is eval data (0: only at the end).
    public var evalSteps: Int = 50
    /// Hold out this fraction of the training file for evaluation when no eval file is given.
    public var evalFraction: Float = 0
    public var saveSteps: Int = 500
    /// Keep at most this many checkpoints (oldest deleted first).
    public var saveTotalLimit: Int = 2
    /// Train on a seeded sample of this fraction of the data (pilot runs: 0.05–0.1).
    public var dataFraction: Float = 1
    /// LoRA rank; 0 = full fine-tune.
    public var loraRank: Int = LoRAConfig().rank
    public var loraAlpha: Float = LoRAConfig().alpha
    public var loraDropout: Float = LoRAConfig().dropout
    public var loraTargetModules: [String] = LoRAConfig().targetModules
    public var useRSLoRA: Bool = LoRAConfig().useRSLoRA
    /// Recompute activations layer by layer in backward (less memory, ~⅓ more compute).
    public var activationCheckpointing: Bool = false
    /// Skip invalid records (reported with counts) instead of failing on the first.
    public var skipInvalid: Bool = false
    /// On a NaN/Inf gradient, skip the optimizer step (counted in `skipped_steps`) instead of stopping the run.
    public var skipNonfiniteSteps: Bool = false
    /// Saved-activation memory one forward/backward pass may hold where a trainer splits its micro-batch into
    /// passes (`examplesPerPass`). The library's knob, not a config key.
    public var passBudgetBytes: Int = Self.defaultPassBudgetBytes

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case learningRate = "learning_rate", lrSchedulerType = "lr_scheduler_type", warmupRatio = "warmup_ratio"
        case warmupSteps = "warmup_steps", numTrainEpochs = "num_train_epochs", maxSteps = "max_steps"
        case batchSize = "batch_size", gradientAccumulationSteps = "gradient_accumulation_steps"
        case maxGradNorm = "max_grad_norm", weightDecay = "weight_decay", adamBeta1 = "adam_beta1"
        case adamBeta2 = "adam_beta2", adamEpsilon = "adam_epsilon", seed, maxLength = "max_length"
        case loggingSteps = "logging_steps", evalSteps = "eval_steps", evalFraction = "eval_fraction"
        case saveSteps = "save_steps", saveTotalLimit = "save_total_limit", dataFraction = "data_fraction"
        case loraRank = "lora_rank", loraAlpha = "lora_alpha", loraDropout = "lora_dropout"
        case loraTargetModules = "lora_target_modules", useRSLoRA = "use_rslora"
        case activationCheckpointing = "activation_checkpointing", skipInvalid = "skip_invalid"
        case skipNonfiniteSteps = "skip_nonfinite_steps"
    }

    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// The adapter to train, nil for a full fine-tune.
    public var lora: LoRAConfig? {
        guard loraRank > 0 else { return nil }
        var c = LoRAConfig()
        c.rank = loraRank
        c.alpha = loraAlpha
        c.dropout = loraDropout
        c.targetModules = loraTargetModules
        c.useRSLoRA = useRSLoRA
        return c
    }

    public var adamW: AdamWConfig {
        AdamWConfig(beta1: adamBeta1, beta2: adamBeta2, epsilon: adamEpsilon, weightDecay: weightDecay)
    }

    public func validate() throws {
        func check(_ ok: Bool, _ key: CodingKeys, _ value: Any, _ expected: String) throws {
            if !ok { throw ConfigError.invalid(field: key.rawValue, value: "\(value)", expected: expected) }
        }
        try check(learningRate > 0, .learningRate, learningRate, "> 0")
        try check(warmupRatio >= 0 && warmupRatio < 1, .warmupRatio, warmupRatio, "in [0, 1)")
        try check(warmupSteps >= 0, .warmupSteps, warmupSteps, "≥ 0")
        // Upper bounds far beyond any run keep every product of these (steps, rows, tokens) from overflowing.
        try check(numTrainEpochs >= 1 && numTrainEpochs <= 100_000, .numTrainEpochs, numTrainEpochs, "1...100000")
        try check(
            maxSteps == -1 || (maxSteps > 0 && maxSteps <= 1 << 30), .maxSteps, maxSteps,
            "1...\(1 << 30), or -1 for epochs")
        try check(batchSize >= 1 && batchSize <= 1 << 16, .batchSize, batchSize, "1...65536")
        try check(
            gradientAccumulationSteps >= 1 && gradientAccumulationSteps <= 1 << 16, .gradientAccumulationSteps,
            gradientAccumulationSteps, "1...65536")
        try check(maxGradNorm >= 0, .maxGradNorm, maxGradNorm, "≥ 0 (0 disables clipping)")
        try check(adamBeta1 >= 0 && adamBeta1 < 1, .adamBeta1, adamBeta1, "in [0, 1)")
        try check(adamBeta2 >= 0 && adamBeta2 < 1, .adamBeta2, adamBeta2, "in [0, 1)")
        try check(adamEpsilon > 0, .adamEpsilon, adamEpsilon, "> 0")
        try check(weightDecay >= 0, .weightDecay, weightDecay, "≥ 0")
        try check(maxLength >= 2 && maxLength <= 1 << 20, .maxLength, maxLength, "2...1048576")
        try check(loggingSteps >= 1, .loggingSteps, loggingSteps, "≥ 1")
        try check(evalSteps >= 0, .evalSteps, evalSteps, "≥ 0")
        try check(evalFraction >= 0 && evalFraction < 1, .evalFraction, evalFraction, "in [0, 1)")
        try check(saveSteps >= 1, .saveSteps, saveSteps, "≥ 1")
        try check(saveTotalLimit >= 1, .saveTotalLimit, saveTotalLimit, "≥ 1")
        try check(dataFraction > 0 && dataFraction <= 1, .dataFraction, dataFraction, "in (0, 1]")
        try check(loraRank >= 0 && loraRank <= 1 << 16, .loraRank, loraRank, "0...65536 (0 = full fine-tune)")
        try lora?.validate()
    }

    /// Refuses a `max_length` beyond the model's positions (RoPE has no angles past them).
    public func validate(for model: LlamaConfig) throws {
        let narrowest = min(model.hiddenSize, model.kvDim, model.intermediateSize)
        guard loraRank <= narrowest else {
            throw ConfigError.invalid(
                field: CodingKeys.loraRank.rawValue, value: "\(loraRank)",
                expected: "≤ \(narrowest), the narrowest projection of this model (a rank beyond it adds nothing)")
        }
        guard maxLength <= model.maxPositions else {
            throw ConfigError.invalid(
                field: CodingKeys.maxLength.rawValue, value: "\(maxLength)",
                expected: "≤ \(model.maxPositions), the model's context length (lower --max-length)")
        }
    }
}

/// A trainer's config: its own keys plus the shared `training` arguments, flattened into one object.
/// Fields of `training` read and write as the config's own (`config.learningRate`).
@dynamicMemberLookup
public protocol TrainerConfig: PartialConfig, Equatable {
    var training: TrainingArguments { get set }
    /// The trainer's own keys (the shared ones are added by `keys`).
    static var ownKeys: [String] { get }
    func validate() throws
}

extension TrainerConfig {
    public static var keys: [String] { TrainingArguments.keys + ownKeys }

    public subscript<T>(dynamicMember path: KeyPath<TrainingArguments, T>) -> T { training[keyPath: path] }

    public subscript<T>(dynamicMember path: WritableKeyPath<TrainingArguments, T>) -> T {
        get { training[keyPath: path] }
        set { training[keyPath: path] = newValue }
    }
}

extension TrainerConfig {
    /// What every trainer checks before it allocates anything: the config, `max_length` against the model's
    /// positions, and that there is training data (`unit`: "examples", "pairs").
    public func validate(for model: LlamaConfig, trainingExamples: Int, unit: String) throws {
        try validate()
        try training.validate(for: model)
        guard trainingExamples > 0 else {
            throw ConfigError.invalid(field: "train data", value: "0 \(unit)", expected: "at least one")
        }
    }
}

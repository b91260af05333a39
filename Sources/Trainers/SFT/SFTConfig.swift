// Hyper-parameters of supervised fine-tuning. Defaults live on these properties and nowhere else;
// keys use TRL/transformers names (snake_case) so a TRL user's config reads naturally.

import Datasets
import Foundation
import Models
import TensorCore

public struct SFTConfig: PartialConfig, Equatable {
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
    /// Sequences per micro-batch.
    public var batchSize: Int = 8
    public var gradientAccumulationSteps: Int = 1
    /// Global-norm clipping threshold (0 disables).
    public var maxGradNorm: Float = 1
    public var weightDecay: Float = 0
    public var adamBeta1: Float = 0.9
    public var adamBeta2: Float = 0.999
    public var adamEpsilon: Float = 1e-8
    public var seed: UInt64 = 42
    /// Examples longer than this many tokens are truncated (counted and reported).
    public var maxLength: Int = 1024
    /// Concatenate examples into rows of `max_length` tokens.
    public var packing: Bool = false
    /// Batch examples of similar length to cut padding (TRL's `group_by_length`; ignored with packing).
    public var groupByLength: Bool = false
    /// `completion_only` (assistant turns / completions) or `all_tokens`.
    public var loss: LossScope = .completionOnly
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
    public var loraRank: Int = 16
    public var loraAlpha: Float = 32
    public var loraDropout: Float = 0.05
    public var loraTargetModules: [String] = ProjectionKind.allCases.map(\.moduleName)
    public var useRSLoRA: Bool = false
    /// Recompute activations layer by layer in backward (less memory, ~⅓ more compute).
    public var activationCheckpointing: Bool = false
    /// Skip invalid records (reported with counts) instead of failing on the first.
    public var skipInvalid: Bool = false

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case learningRate = "learning_rate", lrSchedulerType = "lr_scheduler_type", warmupRatio = "warmup_ratio"
        case warmupSteps = "warmup_steps", numTrainEpochs = "num_train_epochs", maxSteps = "max_steps", batchSize = "batch_size"
        case gradientAccumulationSteps = "gradient_accumulation_steps", maxGradNorm = "max_grad_norm", weightDecay = "weight_decay"
        case adamBeta1 = "adam_beta1", adamBeta2 = "adam_beta2", adamEpsilon = "adam_epsilon", seed
        case maxLength = "max_length", packing, groupByLength = "group_by_length", loss, loggingSteps = "logging_steps", evalSteps = "eval_steps"
        case evalFraction = "eval_fraction", saveSteps = "save_steps", saveTotalLimit = "save_total_limit"
        case dataFraction = "data_fraction", loraRank = "lora_rank", loraAlpha = "lora_alpha", loraDropout = "lora_dropout"
        case loraTargetModules = "lora_target_modules", useRSLoRA = "use_rslora"
        case activationCheckpointing = "activation_checkpointing", skipInvalid = "skip_invalid"
    }

    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

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
        try check(numTrainEpochs >= 1, .numTrainEpochs, numTrainEpochs, "≥ 1")
        try check(maxSteps == -1 || maxSteps > 0, .maxSteps, maxSteps, "> 0, or -1 for epochs")
        try check(batchSize >= 1, .batchSize, batchSize, "≥ 1")
        try check(gradientAccumulationSteps >= 1, .gradientAccumulationSteps, gradientAccumulationSteps, "≥ 1")
        try check(maxGradNorm >= 0, .maxGradNorm, maxGradNorm, "≥ 0 (0 disables clipping)")
        try check(maxLength >= 2, .maxLength, maxLength, "≥ 2")
        try check(loggingSteps >= 1, .loggingSteps, loggingSteps, "≥ 1")
        try check(evalSteps >= 0, .evalSteps, evalSteps, "≥ 0")
        try check(evalFraction >= 0 && evalFraction < 1, .evalFraction, evalFraction, "in [0, 1)")
        try check(saveSteps >= 1, .saveSteps, saveSteps, "≥ 1")
        try check(saveTotalLimit >= 1, .saveTotalLimit, saveTotalLimit, "≥ 1")
        try check(dataFraction > 0 && dataFraction <= 1, .dataFraction, dataFraction, "in (0, 1]")
        try check(loraRank >= 0, .loraRank, loraRank, "≥ 0 (0 = full fine-tune)")
        try lora?.validate()
    }
}

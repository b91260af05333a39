// Hyper-parameters of KTO: the shared `TrainingArguments` plus TRL's KTOConfig keys.

import Foundation
import Models

public struct KTOConfig: TrainerConfig {
    public var training = TrainingArguments()
    /// β of the log-ratio (TRL default 0.1).
    public var beta: Double = 0.1
    /// λ_D and λ_U: keep λ_D·n_D / (λ_U·n_U) in [1, 4/3] (Ethayarajh et al. 2024 §4.2).
    public var desirableWeight: Double = 1
    public var undesirableWeight: Double = 1
    /// A truncated example keeps at most this many prompt tokens, and at most half of `max_length`.
    public var maxPromptLength: Int = 512

    /// TRL's learning rate for KTO (1e-6, full fine-tunes; LoRA runs usually want ~1e-5 to 5e-5).
    public init() { training.learningRate = 1e-6 }

    public var effectiveMaxPromptLength: Int { min(maxPromptLength, training.maxLength / 2) }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case beta, desirableWeight = "desirable_weight", undesirableWeight = "undesirable_weight"
        case maxPromptLength = "max_prompt_length"
    }

    public static var ownKeys: [String] { CodingKeys.allCases.map(\.rawValue) }

    public init(from decoder: any Decoder) throws {
        training = try TrainingArguments(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        beta = try c.decode(Double.self, forKey: .beta)
        desirableWeight = try c.decode(Double.self, forKey: .desirableWeight)
        undesirableWeight = try c.decode(Double.self, forKey: .undesirableWeight)
        maxPromptLength = try c.decode(Int.self, forKey: .maxPromptLength)
    }

    public func encode(to encoder: any Encoder) throws {
        try training.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(beta, forKey: .beta)
        try c.encode(desirableWeight, forKey: .desirableWeight)
        try c.encode(undesirableWeight, forKey: .undesirableWeight)
        try c.encode(maxPromptLength, forKey: .maxPromptLength)
    }

    public func validate() throws {
        try training.validate()
        func check(_ ok: Bool, _ key: String, _ value: Any, _ expected: String) throws {
            if !ok { throw ConfigError.invalid(field: key, value: "\(value)", expected: expected) }
        }
        try check(beta > 0, CodingKeys.beta.rawValue, beta, "> 0")
        try check(desirableWeight > 0, CodingKeys.desirableWeight.rawValue, desirableWeight, "> 0")
        try check(undesirableWeight > 0, CodingKeys.undesirableWeight.rawValue, undesirableWeight, "> 0")
        try check(maxPromptLength >= 1, CodingKeys.maxPromptLength.rawValue, maxPromptLength, "≥ 1")
        // The reference point z₀ is a batch estimate over mismatched pairs: one example has none.
        try check(training.batchSize >= 2, "per_device_train_batch_size", training.batchSize, "≥ 2 for KTO")
    }
}

// Hyper-parameters of direct preference optimisation: the shared `TrainingArguments` plus TRL's DPO keys.

import Foundation
import Models

public struct DPOConfig: TrainerConfig {
    public var training = TrainingArguments()
    /// β: strength of the implicit KL constraint (TRL default 0.1).
    public var beta: Double = 0.1
    /// `sigmoid` (DPO; with `label_smoothing`: cDPO), `robust`, `ipo`, `hinge`, `simpo` or `orpo` (β = ORPO's λ).
    public var lossType: DPOLoss.Kind = .sigmoid
    /// ε of cDPO / robust DPO / SimPO.
    public var labelSmoothing: Double = 0
    /// γ of SimPO (TRL's CPOConfig default 0.5).
    public var simpoGamma: Double = 0.5
    /// A truncated pair keeps at most this many prompt tokens, and at most half of `max_length`.
    public var maxPromptLength: Int = 512

    /// TRL's DPOConfig learning rate (1e-6, for full fine-tunes; LoRA runs usually want ~1e-5 to 5e-5).
    public init() { training.learningRate = 1e-6 }

    public var effectiveMaxPromptLength: Int { min(maxPromptLength, training.maxLength / 2) }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case beta, lossType = "loss_type", labelSmoothing = "label_smoothing", simpoGamma = "simpo_gamma"
        case maxPromptLength = "max_prompt_length"
    }

    public static var ownKeys: [String] { CodingKeys.allCases.map(\.rawValue) }

    public init(from decoder: any Decoder) throws {
        training = try TrainingArguments(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        beta = try c.decode(Double.self, forKey: .beta)
        lossType = try c.decode(DPOLoss.Kind.self, forKey: .lossType)
        labelSmoothing = try c.decode(Double.self, forKey: .labelSmoothing)
        simpoGamma = try c.decode(Double.self, forKey: .simpoGamma)
        maxPromptLength = try c.decode(Int.self, forKey: .maxPromptLength)
    }

    public func encode(to encoder: any Encoder) throws {
        try training.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(beta, forKey: .beta)
        try c.encode(lossType, forKey: .lossType)
        try c.encode(labelSmoothing, forKey: .labelSmoothing)
        try c.encode(simpoGamma, forKey: .simpoGamma)
        try c.encode(maxPromptLength, forKey: .maxPromptLength)
    }

    public func validate() throws {
        try training.validate()
        func check(_ ok: Bool, _ key: CodingKeys, _ value: Any, _ expected: String) throws {
            if !ok { throw ConfigError.invalid(field: key.rawValue, value: "\(value)", expected: expected) }
        }
        try check(beta > 0, .beta, beta, "> 0")
        try check(labelSmoothing >= 0 && labelSmoothing < 0.5, .labelSmoothing, labelSmoothing, "in [0, 0.5)")
        try check(maxPromptLength >= 1, .maxPromptLength, maxPromptLength, "≥ 1")
    }
}

// Hyper-parameters of reward modelling: the shared `TrainingArguments` plus the reward model's own keys
// in TRL's names (`center_rewards_coefficient`, `max_prompt_length`).

import Datasets
import Foundation
import Models

public struct RewardConfig: TrainerConfig {
    public var training = TrainingArguments()
    /// Reward centering (Eisenstein et al. 2023): adds coefficient × (r_c + r_r)² (0 = off, TRL's None).
    public var centerRewardsCoefficient: Double = 0
    /// Label smoothing ε for noisy annotators: −(1−ε) log σ(Δ) − ε log σ(−Δ).
    public var labelSmoothing: Double = 0
    /// After training, the rewards of this many responses of the training comparisons give the mean and std saved
    /// with the model for normalised scores (Ziegler et al. 2019; Stiennon et al. 2020); 0 = none.
    public var normalizationSamples: Int = 256
    /// A truncated pair keeps at most this many prompt tokens, and at most half of `max_length` (its
    /// responses keep their first tokens); see `effectiveMaxPromptLength`.
    public var maxPromptLength: Int = PreferenceEncodingConfig().maxPromptLength

    /// min(`max_prompt_length`, `max_length` / 2): a short `--max-length` needs no second flag.
    public var effectiveMaxPromptLength: Int { min(maxPromptLength, training.maxLength / 2) }

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case centerRewardsCoefficient = "center_rewards_coefficient", labelSmoothing = "label_smoothing"
        case maxPromptLength = "max_prompt_length", normalizationSamples = "normalization_samples"
    }

    public static var ownKeys: [String] { CodingKeys.allCases.map(\.rawValue) }

    public init(from decoder: any Decoder) throws {
        training = try TrainingArguments(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        centerRewardsCoefficient = try c.decode(Double.self, forKey: .centerRewardsCoefficient)
        labelSmoothing = try c.decode(Double.self, forKey: .labelSmoothing)
        maxPromptLength = try c.decode(Int.self, forKey: .maxPromptLength)
        normalizationSamples = try c.decode(Int.self, forKey: .normalizationSamples)
    }

    public func encode(to encoder: any Encoder) throws {
        try training.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(centerRewardsCoefficient, forKey: .centerRewardsCoefficient)
        try c.encode(labelSmoothing, forKey: .labelSmoothing)
        try c.encode(maxPromptLength, forKey: .maxPromptLength)
        try c.encode(normalizationSamples, forKey: .normalizationSamples)
    }

    public func validate() throws {
        try training.validate()
        guard centerRewardsCoefficient >= 0 else {
            throw ConfigError.invalid(
                field: CodingKeys.centerRewardsCoefficient.rawValue, value: "\(centerRewardsCoefficient)",
                expected: "≥ 0")
        }
        guard labelSmoothing >= 0 && labelSmoothing < 0.5 else {
            throw ConfigError.invalid(
                field: CodingKeys.labelSmoothing.rawValue, value: "\(labelSmoothing)", expected: "in [0, 0.5)")
        }
        guard normalizationSamples >= 0 else {
            throw ConfigError.invalid(
                field: CodingKeys.normalizationSamples.rawValue, value: "\(normalizationSamples)", expected: "≥ 0")
        }
        guard maxPromptLength >= 1 else {
            throw ConfigError.invalid(
                field: CodingKeys.maxPromptLength.rawValue, value: "\(maxPromptLength)",
                expected: "≥ 1")
        }
    }
}

// Hyper-parameters of the critic-free RL trainers (GRPO, RLOO): the shared `TrainingArguments` plus TRL's
// GRPOConfig keys. `per_device_train_batch_size` counts completions, as in TRL: batch_size / num_generations
// prompts per micro-batch.

import Foundation
import Models

public struct GroupRLConfig: TrainerConfig {
    public enum Estimator: String, Codable, Sendable, CaseIterable {
        /// Group-normalised advantages, KL (k3) in the loss (Shao et al. 2024).
        case grpo
        /// Leave-one-out baseline on rewards with the sequence KL subtracted (Ahmadian et al. 2024).
        case rloo
    }

    public var training = TrainingArguments()
    public var estimator: Estimator = .grpo
    /// Completions sampled per prompt (k).
    public var numGenerations: Int = 8
    public var maxCompletionLength: Int = 256
    public var temperature: Double = 1
    public var topP: Double = 1
    public var topK: Int = 0
    /// KL coefficient β (0: the reference is never scored; TRL's default).
    public var beta: Double = 0
    /// Clip range ε (low) and ε_high (DAPO's asymmetric clip; defaults to ε).
    public var epsilon: Double = 0.2
    public var epsilonHigh: Double? = nil
    /// `grpo`, `dapo` (TRL's default) or `dr_grpo` token aggregation.
    public var lossType: GRPOLoss.Aggregation = .dapo
    /// Divide group-centred rewards by their std (GRPO; Dr. GRPO turns it off).
    public var scaleRewards: Bool = true
    /// Subtracted from the reward of a completion cut at max_completion_length (no EOS); 0 = off.
    public var missingEOSPenalty: Double = 0

    /// TRL's GRPOConfig learning rate (1e-6, full fine-tunes).
    public init() {
        training.learningRate = 1e-6
        training.batchSize = 16
    }

    public var promptsPerBatch: Int { training.batchSize / numGenerations }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case estimator, numGenerations = "num_generations", maxCompletionLength = "max_completion_length"
        case temperature, topP = "top_p", topK = "top_k", beta, epsilon, epsilonHigh = "epsilon_high"
        case lossType = "loss_type", scaleRewards = "scale_rewards", missingEOSPenalty = "missing_eos_penalty"
    }

    public static var ownKeys: [String] { CodingKeys.allCases.map(\.rawValue) }

    public init(from decoder: any Decoder) throws {
        training = try TrainingArguments(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        estimator = try c.decode(Estimator.self, forKey: .estimator)
        numGenerations = try c.decode(Int.self, forKey: .numGenerations)
        maxCompletionLength = try c.decode(Int.self, forKey: .maxCompletionLength)
        temperature = try c.decode(Double.self, forKey: .temperature)
        topP = try c.decode(Double.self, forKey: .topP)
        topK = try c.decode(Int.self, forKey: .topK)
        beta = try c.decode(Double.self, forKey: .beta)
        epsilon = try c.decode(Double.self, forKey: .epsilon)
        epsilonHigh = try c.decodeIfPresent(Double.self, forKey: .epsilonHigh)
        lossType = try c.decode(GRPOLoss.Aggregation.self, forKey: .lossType)
        scaleRewards = try c.decode(Bool.self, forKey: .scaleRewards)
        missingEOSPenalty = try c.decode(Double.self, forKey: .missingEOSPenalty)
    }

    public func encode(to encoder: any Encoder) throws {
        try training.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(estimator, forKey: .estimator)
        try c.encode(numGenerations, forKey: .numGenerations)
        try c.encode(maxCompletionLength, forKey: .maxCompletionLength)
        try c.encode(temperature, forKey: .temperature)
        try c.encode(topP, forKey: .topP)
        try c.encode(topK, forKey: .topK)
        try c.encode(beta, forKey: .beta)
        try c.encode(epsilon, forKey: .epsilon)
        try c.encodeIfPresent(epsilonHigh, forKey: .epsilonHigh)
        try c.encode(lossType, forKey: .lossType)
        try c.encode(scaleRewards, forKey: .scaleRewards)
        try c.encode(missingEOSPenalty, forKey: .missingEOSPenalty)
    }

    public func validate() throws {
        try training.validate()
        func check(_ ok: Bool, _ key: CodingKeys, _ value: Any, _ expected: String) throws {
            if !ok { throw ConfigError.invalid(field: key.rawValue, value: "\(value)", expected: expected) }
        }
        try check(numGenerations >= 2, .numGenerations, numGenerations, "≥ 2 (advantages compare a group)")
        guard training.batchSize % numGenerations == 0 else {
            throw ConfigError.invalid(
                field: "per_device_train_batch_size", value: "\(training.batchSize)",
                expected: "a multiple of num_generations (\(numGenerations)): it counts completions")
        }
        try check(maxCompletionLength >= 1, .maxCompletionLength, maxCompletionLength, "≥ 1")
        try check(
            temperature >= Double(SamplingOptions.minimumTemperature), .temperature, temperature,
            "≥ \(SamplingOptions.minimumTemperature) (RL samples; greedy rollouts have no variance)")
        try check(topP > 0 && topP <= 1, .topP, topP, "in (0, 1]")
        try check(topK >= 0, .topK, topK, "≥ 0")
        try check(beta >= 0, .beta, beta, "≥ 0")
        try check(epsilon > 0 && epsilon < 1, .epsilon, epsilon, "in (0, 1)")
        if let e = epsilonHigh { try check(e > 0, .epsilonHigh, e, "> 0") }
        try check(missingEOSPenalty >= 0, .missingEOSPenalty, missingEOSPenalty, "≥ 0")
    }
}

// Hyper-parameters of PPO-RLHF: the shared `TrainingArguments` plus the keys of TRL's PPOConfig (v0.11–0.13, the
// last before it was deleted) and of its older adaptive-KL form. One iteration samples `rollout_batch_size`
// prompts' completions, then runs `num_ppo_epochs` passes over them in `num_mini_batches` shuffled minibatches;
// each minibatch is one optimizer step of `gradient_accumulation_steps` micro-batches of
// `per_device_train_batch_size` completions, as in TRL (batch = micro × accumulation × minibatches).

import Foundation
import Models

public struct PPOConfig: TrainerConfig {
    public var training = TrainingArguments()
    public var numPPOEpochs: Int = 4
    public var numMiniBatches: Int = 1
    /// New tokens per completion (TRL's `response_length`).
    public var responseLength: Int = 53
    public var temperature: Double = 0.7
    public var topP: Double = 1
    public var topK: Int = 0
    /// KL coefficient β of the reward r = score − β·KL (Ziegler et al. 2019 eq. 2), the initial one when adaptive.
    public var klCoef: Double = 0.05
    /// Estimator of the per-token KL in the reward (TRL's `kl_estimator`).
    public var klEstimator: KLEstimator = .k1
    /// Ziegler et al.'s adaptive controller: β follows the sequence KL towards `kl_target` over `kl_horizon` samples.
    public var adaptiveKL: Bool = false
    public var klTarget: Double = 6
    public var klHorizon: Double = 10_000
    /// PPO's ratio clip ε and the value clip ε_v.
    public var cliprange: Double = 0.2
    public var cliprangeValue: Double = 0.2
    /// Weight of the value loss c_v.
    public var vfCoef: Double = 0.1
    /// GAE's γ and λ (Schulman et al. 2016).
    public var gamma: Double = 1
    public var lam: Double = 0.95
    /// Whiten the per-token rewards before GAE (mean kept).
    public var whitenRewards: Bool = false
    /// Subtracted from the score of a completion that reached `response_length` without a stop token; 0 = off.
    public var missingEOSPenalty: Double = 0
    /// Normalise reward-model scores with the statistics stored beside the model (`reward_model.json`).
    public var normalizeReward: Bool = true
    /// Clip scores to [−score_clip, score_clip] (0 = off).
    public var scoreClip: Double = 0
    /// InstructGPT's PPO-ptx coefficient γ: γ·(−mean log π) on demonstration data joins every step (0 = off).
    public var ptxCoef: Double = 0
    /// Every this many iterations, a few prompts with their completions, scores and KL go to samples.jsonl.
    public var logSamplesEvery: Int = 10
    /// A rollout batch whose mean sequence KL (k1) is below −this stops the run (sampling/scoring mismatch).
    public var negativeKLTolerance: Double = 0.5
    /// Warn when the re-computed log-probs of the first PPO epoch differ from the rollout's by more than this.
    public var logprobDriftWarning: Double = 1e-3
    /// Completions sampled, scored and valued together in the rollout phase (TRL's name), a multiple of
    /// per_device_train_batch_size; 0 = one minibatch. The unit the ranks of an mpirun share, and the unit of the
    /// sampling seeds, so results do not depend on the rank count.
    public var localRolloutForwardBatchSize: Int = 0

    /// TRL's PPOConfig learning rate (3e-6) and no LoRA dropout (TRL disables dropout for PPO: the ratio
    /// compares two forwards of one policy).
    public init() {
        training.learningRate = 3e-6
        training.batchSize = 16
        training.loraDropout = 0
    }

    /// Completions sampled per iteration (one per prompt).
    public var rolloutBatchSize: Int { miniBatchSize * numMiniBatches }
    /// Completions per optimizer step.
    public var miniBatchSize: Int { training.batchSize * training.gradientAccumulationSteps }
    /// Completions per rollout chunk (`local_rollout_forward_batch_size`, or one minibatch).
    public var rolloutChunkSize: Int { localRolloutForwardBatchSize > 0 ? localRolloutForwardBatchSize : miniBatchSize }
    /// Optimizer steps per iteration.
    public var stepsPerIteration: Int { numPPOEpochs * numMiniBatches }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case numPPOEpochs = "num_ppo_epochs", numMiniBatches = "num_mini_batches", responseLength = "response_length"
        case temperature, topP = "top_p", topK = "top_k", klCoef = "kl_coef", klEstimator = "kl_estimator"
        case adaptiveKL = "adaptive_kl", klTarget = "kl_target", klHorizon = "kl_horizon", cliprange
        case cliprangeValue = "cliprange_value", vfCoef = "vf_coef", gamma, lam, whitenRewards = "whiten_rewards"
        case missingEOSPenalty = "missing_eos_penalty", normalizeReward = "normalize_reward"
        case scoreClip = "score_clip", ptxCoef = "ptx_coef", logSamplesEvery = "log_samples_every"
        case negativeKLTolerance = "negative_kl_tolerance", logprobDriftWarning = "logprob_drift_warning"
        case localRolloutForwardBatchSize = "local_rollout_forward_batch_size"
    }

    public static var ownKeys: [String] { CodingKeys.allCases.map(\.rawValue) }

    public init(from decoder: any Decoder) throws {
        training = try TrainingArguments(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        numPPOEpochs = try c.decode(Int.self, forKey: .numPPOEpochs)
        numMiniBatches = try c.decode(Int.self, forKey: .numMiniBatches)
        responseLength = try c.decode(Int.self, forKey: .responseLength)
        temperature = try c.decode(Double.self, forKey: .temperature)
        topP = try c.decode(Double.self, forKey: .topP)
        topK = try c.decode(Int.self, forKey: .topK)
        klCoef = try c.decode(Double.self, forKey: .klCoef)
        klEstimator = try c.decode(KLEstimator.self, forKey: .klEstimator)
        adaptiveKL = try c.decode(Bool.self, forKey: .adaptiveKL)
        klTarget = try c.decode(Double.self, forKey: .klTarget)
        klHorizon = try c.decode(Double.self, forKey: .klHorizon)
        cliprange = try c.decode(Double.self, forKey: .cliprange)
        cliprangeValue = try c.decode(Double.self, forKey: .cliprangeValue)
        vfCoef = try c.decode(Double.self, forKey: .vfCoef)
        gamma = try c.decode(Double.self, forKey: .gamma)
        lam = try c.decode(Double.self, forKey: .lam)
        whitenRewards = try c.decode(Bool.self, forKey: .whitenRewards)
        missingEOSPenalty = try c.decode(Double.self, forKey: .missingEOSPenalty)
        normalizeReward = try c.decode(Bool.self, forKey: .normalizeReward)
        scoreClip = try c.decode(Double.self, forKey: .scoreClip)
        ptxCoef = try c.decode(Double.self, forKey: .ptxCoef)
        logSamplesEvery = try c.decode(Int.self, forKey: .logSamplesEvery)
        negativeKLTolerance = try c.decode(Double.self, forKey: .negativeKLTolerance)
        logprobDriftWarning = try c.decode(Double.self, forKey: .logprobDriftWarning)
        localRolloutForwardBatchSize = try c.decode(Int.self, forKey: .localRolloutForwardBatchSize)
    }

    public func encode(to encoder: any Encoder) throws {
        try training.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(numPPOEpochs, forKey: .numPPOEpochs)
        try c.encode(numMiniBatches, forKey: .numMiniBatches)
        try c.encode(responseLength, forKey: .responseLength)
        try c.encode(temperature, forKey: .temperature)
        try c.encode(topP, forKey: .topP)
        try c.encode(topK, forKey: .topK)
        try c.encode(klCoef, forKey: .klCoef)
        try c.encode(klEstimator, forKey: .klEstimator)
        try c.encode(adaptiveKL, forKey: .adaptiveKL)
        try c.encode(klTarget, forKey: .klTarget)
        try c.encode(klHorizon, forKey: .klHorizon)
        try c.encode(cliprange, forKey: .cliprange)
        try c.encode(cliprangeValue, forKey: .cliprangeValue)
        try c.encode(vfCoef, forKey: .vfCoef)
        try c.encode(gamma, forKey: .gamma)
        try c.encode(lam, forKey: .lam)
        try c.encode(whitenRewards, forKey: .whitenRewards)
        try c.encode(missingEOSPenalty, forKey: .missingEOSPenalty)
        try c.encode(normalizeReward, forKey: .normalizeReward)
        try c.encode(scoreClip, forKey: .scoreClip)
        try c.encode(ptxCoef, forKey: .ptxCoef)
        try c.encode(logSamplesEvery, forKey: .logSamplesEvery)
        try c.encode(negativeKLTolerance, forKey: .negativeKLTolerance)
        try c.encode(logprobDriftWarning, forKey: .logprobDriftWarning)
        try c.encode(localRolloutForwardBatchSize, forKey: .localRolloutForwardBatchSize)
    }

    public func validate() throws {
        try training.validate()
        func check(_ ok: Bool, _ key: CodingKeys, _ value: Any, _ expected: String) throws {
            if !ok { throw ConfigError.invalid(field: key.rawValue, value: "\(value)", expected: expected) }
        }
        try check(numPPOEpochs >= 1 && numPPOEpochs <= 1000, .numPPOEpochs, numPPOEpochs, "1...1000")
        try check(numMiniBatches >= 1 && numMiniBatches <= 1 << 16, .numMiniBatches, numMiniBatches, "1...65536")
        try check(
            rolloutBatchSize <= 1 << 20, .numMiniBatches, numMiniBatches,
            "at most \(1 << 20) completions per iteration (batch_size × gradient_accumulation_steps × num_mini_batches"
                + " is \(rolloutBatchSize))")
        try check(responseLength >= 1 && responseLength <= 1 << 20, .responseLength, responseLength, "1...1048576")
        try check(
            temperature >= Double(SamplingOptions.minimumTemperature), .temperature, temperature,
            "≥ \(SamplingOptions.minimumTemperature) (PPO samples from the policy)")
        try check(topP > 0 && topP <= 1, .topP, topP, "in (0, 1]")
        try check(topK >= 0, .topK, topK, "≥ 0")
        try check(klCoef >= 0, .klCoef, klCoef, "≥ 0")
        try check(!adaptiveKL || klCoef > 0, .klCoef, klCoef, "> 0 with adaptive_kl (the controller scales it)")
        try check(klTarget > 0, .klTarget, klTarget, "> 0")
        try check(klHorizon > 0, .klHorizon, klHorizon, "> 0")
        try check(cliprange > 0 && cliprange < 1, .cliprange, cliprange, "in (0, 1)")
        try check(cliprangeValue > 0, .cliprangeValue, cliprangeValue, "> 0")
        try check(vfCoef >= 0, .vfCoef, vfCoef, "≥ 0")
        try check(gamma > 0 && gamma <= 1, .gamma, gamma, "in (0, 1]")
        try check(lam >= 0 && lam <= 1, .lam, lam, "in [0, 1]")
        try check(missingEOSPenalty >= 0, .missingEOSPenalty, missingEOSPenalty, "≥ 0")
        try check(scoreClip >= 0, .scoreClip, scoreClip, "≥ 0")
        try check(ptxCoef >= 0, .ptxCoef, ptxCoef, "≥ 0")
        try check(logSamplesEvery >= 0, .logSamplesEvery, logSamplesEvery, "≥ 0 (0 = never)")
        try check(negativeKLTolerance > 0, .negativeKLTolerance, negativeKLTolerance, "> 0")
        try check(logprobDriftWarning > 0, .logprobDriftWarning, logprobDriftWarning, "> 0")
        try check(
            localRolloutForwardBatchSize >= 0 && localRolloutForwardBatchSize <= 1 << 20
                && localRolloutForwardBatchSize % training.batchSize == 0,
            .localRolloutForwardBatchSize, localRolloutForwardBatchSize,
            "0 (one minibatch) or a multiple of per_device_train_batch_size (\(training.batchSize)) up to \(1 << 20)")
    }
}

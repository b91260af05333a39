// GRPO and RLOO on the shared `TrainingLoop`: each step samples `num_generations` completions per prompt from
// the policy (the adapter on the frozen base, KV-cached batched generation), scores them with a reward
// function, turns the group's rewards into advantages (group-normalised, or leave-one-out with the sequence KL
// subtracted), re-scores the completions through the policy with gradients at the sampling temperature and
// applies the clipped token loss (`GRPOLoss`); the reference is the bare base (adapter off) or, beside a full
// fine-tune, a frozen copy of the starting model, scored only when β > 0. One update per generation (TRL's num_iterations = 1), so the old policy is the current one and the
// ratio is 1; the re-score is checked against the sampling log-probs (`rollout/logprob_max_abs_diff`).

import Datasets
import Distributed
import Foundation
import ModelExport
import Models
import TensorCore

public final class GroupRLTrainer: Trainer {
    public let config: GroupRLConfig
    public let loaded: LoadedModel
    public let data: PromptData
    public let reward: RewardFunction
    public let adapter: LoRAAdapter?
    /// The reference π_ref: the frozen base (LoRA) or the frozen copy (full fine-tune); nil when β = 0.
    public let reference: LlamaModel?
    public let loop: TrainingLoop<GroupRLConfig>
    let padID: Int32
    var batches: IndexBatches
    let acts: LlamaActivations
    /// Seconds spent per phase since the trainer was made: generation, scoring (reward), reference, policy (the
    /// policy's forward and backward).
    public var seconds: [String: Double] { phases.seconds }
    var phases = PhaseTimes()
    public static let adapterName = "policy"

    /// `reference` is the frozen copy of the starting model a full fine-tune with β > 0 needs (nil with LoRA).
    public init(
        config: GroupRLConfig, model loaded: LoadedModel, reference: LoadedModel? = nil, data: PromptData,
        reward: RewardFunction, outputDirectory: URL, baseModel: String
    ) throws {
        try config.validate(for: loaded.model.config, trainingExamples: data.train.count, unit: "prompts")
        self.config = config
        self.loaded = loaded
        self.data = data
        self.reward = reward
        var rng = RNG(seed: config.seed)
        let target = try TrainableTarget(
            model: loaded.model, lora: config.training.lora, adapterName: Self.adapterName, seed: rng.next())
        adapter = target.adapter
        if config.beta == 0 {
            self.reference = nil
        } else if adapter != nil {
            self.reference = loaded.model
        } else {
            guard let reference, reference.model !== loaded.model, !reference.model.weights.isTrainable else {
                throw ConfigError.invalid(
                    field: "beta", value: "\(config.beta)",
                    expected: "0 for a full fine-tune without a frozen copy of the starting model (the reference)")
            }
            self.reference = reference.model
        }
        padID = loaded.padTokenID
        batches = IndexBatches(count: data.train.count, batchSize: config.promptsPerBatch, seed: config.seed)
        acts = try config.training.activations(
            for: loaded.model.config, batchSize: config.training.batchSize,
            length: min(config.maxLength, (data.train.map(\.count).max() ?? 0) + config.maxCompletionLength))
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
            count: data.train.count, batchSize: config.promptsPerBatch, seed: config.seed, position: dataPosition)
    }

    /// Samples k completions of each prompt through the policy (dropout off), seeded by step and micro-batch.
    func rollouts(_ indices: [Int], seed: UInt64) throws -> (rollouts: [Rollout], logProbs: [[Float]]) {
        let rowPrompts = indices.flatMap { Array(repeating: $0, count: config.numGenerations) }
        return try loaded.sampleRollouts(
            prompts: rowPrompts.map { data.train[$0] }, answers: rowPrompts.map { data.answers[$0] }, adapter: adapter,
            maxNewTokens: config.maxCompletionLength,
            sampling: SamplingOptions(
                temperature: Float(config.temperature), topK: config.topK, topP: Float(config.topP), seed: seed))
    }

    /// Each micro-batch holds whole groups (all k completions of its prompts), so a rank owning it has every
    /// statistic its advantages need; sampling is seeded by step and micro-batch, so the ranks draw what one
    /// process would.
    public func accumulateGradients(step: Int, microBatches: Int, shard: Shard) throws -> MetricSums {
        let micro = (0..<microBatches).map { _ in batches.next() }
        let total = Double(micro.reduce(0) { $0 + $1.count })
        var sums = MetricSums()
        let k = config.numGenerations, temperature = Float(config.temperature)
        for (i, indices) in micro.enumerated() where shard.owns(i) {
            let seed = config.seed &+ UInt64(step) &* 1_000_003 &+ UInt64(i) &* 7919
            phases.restart()
            let (rollouts, sampled) = try rollouts(indices, seed: seed)
            phases.mark("generation")
            var scores = try reward(rollouts)
            phases.mark("scoring")
            for (j, r) in rollouts.enumerated() where !r.stopped { scores[j] -= config.missingEOSPenalty }
            let labeled = LabeledBatch(
                prompts: rollouts.map(\.promptIDs), completions: rollouts.map(\.completionIDs), padID: padID)
            var reference: [[Double]]?
            if let model = self.reference {
                let ref = try model.score(labeled, adapter: nil, into: acts, temperature: temperature)
                reference = rollouts.indices.map { ref.tokenLogProbs(row: $0).map(Double.init) }
                phases.mark("reference")
            }
            acts.dropoutSeed = seed
            let scored = try loaded.model.score(
                labeled, adapter: adapter, into: acts, training: true, temperature: temperature)
            let policy = rollouts.indices.map { scored.tokenLogProbs(row: $0).map(Double.init) }
            var drift = 0.0  // the rollout/re-score check
            for (a, b) in zip(policy, sampled) { for (x, y) in zip(a, b) { drift = max(drift, abs(x - Double(y))) } }
            // Advantages per group (RLOO: the sequence KL, k1, comes off the reward first).
            var shaped = scores
            if config.estimator == .rloo, let reference {
                for j in shaped.indices {
                    shaped[j] -= config.beta * zip(policy[j], reference[j]).reduce(0) { $0 + $1.0 - $1.1 }
                }
            }
            let groups = stride(from: 0, to: shaped.count, by: k).map { Array(shaped[$0..<($0 + k)]) }
            let advantages =
                (config.estimator == .grpo
                ? RLMath.grpoAdvantages(groups, scale: config.scaleRewards) : RLMath.rlooAdvantages(groups))
                .flatMap { $0 }
            let l = GRPOLoss.evaluate(
                logProbs: policy, oldLogProbs: policy, referenceLogProbs: config.estimator == .grpo ? reference : nil,
                advantages: advantages, beta: config.beta, epsilonLow: config.epsilon,
                epsilonHigh: config.epsilonHigh ?? config.epsilon, aggregation: config.lossType,
                maxCompletionLength: config.maxCompletionLength)
            let n = Double(rollouts.count), weight = Double(indices.count) / total
            loaded.model.backward(scored, dLogProbs: scored.tokenGradients(l.dLogProbs, scale: weight))
            phases.mark("policy")
            let mean = scores.reduce(0, +) / n
            let std = (scores.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / max(1, n - 1)).squareRoot()
            let lengths = rollouts.map { Double($0.completionIDs.count) }
            sums.add("loss", l.loss * n, weight: n)
            sums.add("reward", scores.reduce(0, +), weight: n)
            sums.add("reward_std", std * n, weight: n)
            sums.add("completions/mean_length", lengths.reduce(0, +), weight: n)
            sums.add("completions/clipped_ratio", Double(rollouts.filter { !$0.stopped }.count), weight: n)
            sums.add("clip_ratio", l.clipFraction * n, weight: n)
            if let reference { sums.add("kl", RLMath.meanKL(policy: policy, reference: reference) * n, weight: n) }
            sums.add("rollout/logprob_max_abs_diff", drift, weight: 1)
            sums.tokens += Double(scored.batch.realTokens)
        }
        return sums
    }

    public func evaluate() throws -> Metrics? { nil }

    /// The adapter (PEFT, `adapter/`) or the full model (HF directory, `model/`).
    @discardableResult
    public func exportFinal() throws -> URL {
        try TrainableTarget.exportFinal(
            loaded: loaded, adapter: adapter, heads: [], baseModel: loop.identity.baseModel,
            to: loop.outputDirectory)
    }
}

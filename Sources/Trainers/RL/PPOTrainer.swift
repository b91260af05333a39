// PPO-RLHF (Ziegler et al. 2019; Stiennon et al. 2020; Ouyang et al. 2022) on the shared `TrainingLoop`, with
// Huang et al.'s implementation details ("The N implementation details of RLHF with PPO", 2024): per iteration,
// completions sampled from the policy (KV-cached batched generation at `temperature`), scored by the reward
// (missing-EOS penalty, optional normalisation and clipping), per-token rewards score − β·KL to the reference
// (Ouyang et al. eq. 2), values from the critic, GAE (Schulman et al. 2016 eq. 16) and whitened advantages; then
// `num_ppo_epochs` passes of shuffled minibatches, each one optimizer step on the clipped surrogate plus the
// clipped value loss (Schulman et al. 2017 eq. 7, 9) and, for PPO-ptx, γ times the demonstrations' NLL (Ouyang
// et al. eq. 2). One loop step = one minibatch update.
//
// Models: the policy is a LoRA adapter on the frozen base (or the full weights); the reference is the frozen base
// with no adapter; the critic is another adapter on that frozen base with a `score` head, initialised from the
// reward model's adapter and head when it is an adapter there; a reward adapter shares the base too. A full
// fine-tune needs a second, frozen copy of the starting model, which carries the reference, critic and reward.
//
// Data-parallel (mpirun): the ranks share the rollout phase by chunks of `local_rollout_forward_batch_size`
// completions (sampling seeded per chunk; rewards, reference log-probs and values computed per chunk), then gather
// the whole rollout batch, so KL, the controller, GAE and the whitening statistics are the global batch's and
// every rank holds the buffer one process would; each optimizer step's micro-batches are then shared as in SFT.
//
// Diagnostics: the first epoch's re-computed log-probs against the rollout's (`rollout/logprob_max_abs_diff`,
// a warning above `logprob_drift_warning`); a negative mean KL below −`negative_kl_tolerance` or a non-finite
// value stops the run with an error before anything is saved, so the last good checkpoint stays the latest.

import Datasets
import Distributed
import Foundation
import ModelExport
import ModelFormats
import Models
import TensorCore

public final class PPOTrainer: Trainer {
    public let config: PPOConfig
    /// The policy's model (trainable weights for a full fine-tune).
    public let loaded: LoadedModel
    /// The frozen base: the reference (no adapter), the critic adapter, a reward adapter.
    public let frozen: LlamaModel
    public let data: PromptData
    /// PPO-ptx demonstrations (empty: off).
    public let demonstrations: [EncodedExample]
    public let reward: RewardFunction
    public let adapter: LoRAAdapter?
    public let critic: LoRAAdapter
    public let valueHead: ScalarHead
    public let loop: TrainingLoop<PPOConfig>
    let padID: Int32
    var batches: IndexBatches
    var ptxBatches: IndexBatches?
    let acts: LlamaActivations
    /// Where the iteration in progress stands (saved in checkpoints: a resume mid-iteration continues exactly).
    public private(set) var state: PPOState
    /// Seconds spent per phase since the trainer was made: generation, scoring (reward), reference, critic (values
    /// and the critic's update), policy (the policy's forward/backward, PPO-ptx included).
    public var seconds: [String: Double] { phases.seconds }
    var phases = PhaseTimes()
    /// (step, max |Δ log p|) of iterations whose first re-computed log-probs drifted above `logprob_drift_warning`.
    public private(set) var driftWarnings: [(step: Int, drift: Double)] = []
    public static let adapterName = "policy", criticName = "critic"
    /// Rows written to samples.jsonl per logged iteration.
    static let sampleRows = 4

    /// `reference` is the frozen copy of the starting model a full fine-tune needs (nil with LoRA). With
    /// `rewardModel` the critic starts from it (its adapter and head when it is an adapter on the frozen base, else
    /// its head on a fresh adapter); without, from a fresh adapter and a zero head.
    public init(
        config: PPOConfig, model loaded: LoadedModel, reference: LoadedModel? = nil, data: PromptData,
        reward: RewardFunction, rewardModel: RewardModel? = nil, demonstrations: [EncodedExample] = [],
        outputDirectory: URL, baseModel: String
    ) throws {
        try config.validate(for: loaded.model.config, trainingExamples: data.train.count, unit: "prompts")
        guard config.ptxCoef == 0 || !demonstrations.isEmpty else {
            throw ConfigError.invalid(
                field: "ptx_coef", value: "\(config.ptxCoef)", expected: "0 without demonstrations (--ptx-data)")
        }
        self.config = config
        self.loaded = loaded
        self.data = data
        self.reward = reward
        self.demonstrations = demonstrations
        var rng = RNG(seed: config.seed)
        let target = try TrainableTarget(
            model: loaded.model, lora: config.training.lora, adapterName: Self.adapterName, seed: rng.next())
        adapter = target.adapter
        if adapter == nil {
            guard let reference, reference.model !== loaded.model, !reference.model.weights.isTrainable else {
                throw ConfigError.invalid(
                    field: "lora_rank", value: "0",
                    expected: "a frozen copy of the starting model beside a full fine-tune (the reference)")
            }
            frozen = reference.model
        } else {
            frozen = loaded.model
        }
        (critic, valueHead) = try Self.makeCritic(
            on: frozen, config: config, rewardModel: rewardModel, seed: rng.next())
        padID = loaded.padTokenID
        guard data.train.count >= config.rolloutBatchSize else {
            throw ConfigError.invalid(
                field: "train data", value: "\(data.train.count) prompts",
                expected: "at least one rollout batch (\(config.rolloutBatchSize) = per_device_train_batch_size × "
                    + "gradient_accumulation_steps × num_mini_batches)")
        }
        batches = IndexBatches(count: data.train.count, batchSize: config.rolloutBatchSize, seed: config.seed)
        if !demonstrations.isEmpty {
            ptxBatches = IndexBatches(
                count: demonstrations.count, batchSize: config.training.batchSize, seed: config.seed)
        }
        let longest = max(
            (data.train.map(\.count).max() ?? 0) + config.responseLength, demonstrations.map(\.ids.count).max() ?? 0)
        acts = try config.training.activations(
            for: loaded.model.config, batchSize: config.training.batchSize, length: min(config.maxLength, longest))
        state = PPOState(
            controller: AdaptiveKLController(initial: config.klCoef, target: config.klTarget, horizon: config.klHorizon)
        )
        var groups = target.groups
        groups.append(ParameterGroup(name: Self.criticName, store: critic.store, filePrefix: Self.criticName + "."))
        groups.append(ParameterGroup(name: "value_head", store: valueHead.store, filePrefix: Self.criticName + "."))
        loop = TrainingLoop(
            config: config, groups: groups,
            batchesPerEpoch: data.train.count / config.rolloutBatchSize * config.stepsPerIteration
                * config.training.gradientAccumulationSteps,
            outputDirectory: outputDirectory,
            identity: target.identity(baseModel: baseModel, tokenizer: loaded.tokenizer), rng: rng)
    }

    /// The critic: a trainable copy of the reward model's adapter (dropout off) and `score` head when the reward
    /// model is an adapter on `frozen`; otherwise a fresh adapter with the reward head (or a zero one).
    static func makeCritic(on frozen: LlamaModel, config: PPOConfig, rewardModel rm: RewardModel?, seed: UInt64)
        throws -> (LoRAAdapter, ScalarHead)
    {
        let c = frozen.config
        let source = rm?.adapter.flatMap { rm?.loaded.model === frozen ? $0 : nil }
        var lora = source?.config ?? config.training.lora ?? LoRAConfig()
        lora.dropout = 0
        let adapter = try frozen.addAdapter(named: criticName, config: lora, seed: seed)
        if let source {
            adapter.store.values.pointer.update(from: source.store.values.pointer, count: source.store.parameterCount)
        }
        let from = rm?.head.hiddenSize == c.hiddenSize ? rm?.head : nil
        let head = ScalarHead(name: HFCheckpoint.scoreHeadName, hiddenSize: c.hiddenSize, bias: false, seed: 0, std: 0)
        if let from { head.store.values.pointer.update(from: from.store.values.pointer, count: c.hiddenSize) }
        return (adapter, head)
    }

    // MARK: TrainingObjective

    /// Micro-batches per pass over the prompts (full rollout batches only).
    public var batchesPerEpoch: Int {
        data.train.count / config.rolloutBatchSize * config.stepsPerIteration
            * config.training.gradientAccumulationSteps
    }
    public var dataPosition: DataLoaderPosition { batches.position }
    public func restore(dataPosition: DataLoaderPosition) throws {
        batches = IndexBatches(
            count: data.train.count, batchSize: config.rolloutBatchSize, seed: config.seed, position: dataPosition)
    }

    public func checkpointFiles() throws -> [String: Data] {
        var s = state
        s.ptxPosition = ptxBatches?.position
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return [PPOState.fileName: try encoder.encode(s)]
    }

    public func restore(checkpoint directory: URL) throws {
        let url = directory.appendingPathComponent(PPOState.fileName)
        let saved: PPOState
        do {
            saved = try JSONDecoder().decode(PPOState.self, from: FileContents.read(url))
        } catch {
            throw CheckpointError.invalidState(file: url.path, reason: "unreadable PPO state: \(error)")
        }
        if let problem = saved.rollouts.flatMap({ check($0) }) {
            throw CheckpointError.invalidState(file: url.path, reason: "the rollout buffer \(problem)")
        }
        let beta = saved.controller.coefficient
        guard beta.isFinite && beta >= 0 else {
            throw CheckpointError.invalidState(
                file: url.path, reason: "the KL coefficient \(beta) is not a finite β ≥ 0")
        }
        state = saved
        if let p = state.ptxPosition {
            ptxBatches = IndexBatches(
                count: demonstrations.count, batchSize: config.training.batchSize, seed: config.seed, position: p)
        }
    }

    /// What is wrong with a rollout buffer read from a checkpoint (nil: one this config could have written).
    func check(_ b: PPORollouts) -> String? {
        let n = config.rolloutBatchSize, vocab = Int32(loaded.model.config.vocabularySize)
        guard b.iteration >= 0 else { return "has a negative iteration" }
        for (name, count) in [
            ("prompts", b.prompts.count), ("completions", b.completions.count), ("logProbs", b.logProbs.count),
            ("values", b.values.count), ("advantages", b.advantages.count), ("returns", b.returns.count),
        ] where count != n {
            return "holds \(count) \(name), expected \(n) (one per completion of the rollout batch)"
        }
        for j in 0..<n {
            let length = b.completions[j].count
            guard
                [b.logProbs[j].count, b.values[j].count, b.advantages[j].count, b.returns[j].count]
                    .allSatisfy({ $0 == length }), length <= config.responseLength
            else { return "row \(j): per-token lists do not match its \(length) completion tokens" }
            guard (b.prompts[j] + b.completions[j]).allSatisfy({ $0 >= 0 && $0 < vocab }) else {
                return "row \(j): a token id outside the vocabulary (0..<\(vocab))"
            }
        }
        return nil
    }

    public func accumulateGradients(step: Int, microBatches: Int, shard: Shard) throws -> MetricSums {
        var sums = MetricSums()
        let iteration = step / config.stepsPerIteration
        if state.rollouts?.iteration != iteration { sums = try collectRollouts(iteration: iteration, shard: shard) }
        guard let buffer = state.rollouts else { preconditionFailure("rollouts were just collected") }
        let within = step % config.stepsPerIteration
        let epoch = within / config.numMiniBatches, minibatch = within % config.numMiniBatches
        let order = IndexBatches.permutation(
            count: buffer.completions.count, seed: config.seed &+ UInt64(iteration) &* 1_000_003, epoch: epoch)
        let rows = Array(order[(minibatch * config.miniBatchSize)..<((minibatch + 1) * config.miniBatchSize)])
        let tokens = Double(rows.reduce(0) { $0 + buffer.completions[$1].count })
        let temperature = Float(config.temperature), size = config.training.batchSize
        var drift = 0.0
        for i in 0..<microBatches {
            // Every rank draws the step's demonstrations (keeping the stream in step); the owner computes.
            let demonstrations = config.ptxCoef > 0 ? nextDemonstrations() : []
            guard shard.owns(i) else { continue }
            let chunk = Array(rows[(i * size)..<((i + 1) * size)])
            let labeled = LabeledBatch(
                prompts: chunk.map { buffer.prompts[$0] }, completions: chunk.map { buffer.completions[$0] },
                padID: padID)
            // The step's metrics: token-weighted means over its micro-batches (each adds its share of the weight).
            let weight = Double(chunk.reduce(0) { $0 + buffer.completions[$1].count }) / tokens
            // Policy: clipped surrogate on the re-computed log-probs.
            acts.dropoutSeed = config.seed &+ UInt64(step) &* 1_000_003 &+ UInt64(i) &* 7919
            phases.restart()
            let scored = try loaded.model.score(
                labeled, adapter: adapter, into: acts, training: true, temperature: temperature)
            let logProbs = chunk.indices.map { scored.tokenLogProbs(row: $0).map(Double.init) }
            let old = chunk.map { buffer.logProbs[$0] }
            try Self.checkFinite(logProbs, "policy log-probs", step: step)
            for (new, sampled) in zip(logProbs, old) {
                for (x, y) in zip(new, sampled) { drift = max(drift, abs(x - y)) }
            }
            let p = PPOLoss.policy(
                logProbs: logProbs, oldLogProbs: old, advantages: chunk.map { buffer.advantages[$0] },
                clipRange: config.cliprange)
            loaded.model.backward(scored, dLogProbs: scored.tokenGradients(p.dLogProbs, scale: weight))
            phases.mark("policy")
            // Critic: clipped value loss on the values at the same positions.
            acts.isTraining = true
            let hidden = frozen.forward(labeled.batch, adapter: critic, into: acts)
            let positions = scored.scoredPositions
            let flat = valueHead.forward(hidden: hidden.pointer, rows: positions)
            let values = scored.rowRanges.map { $0.map { Double(flat[$0]) } }
            try Self.checkFinite(values, "values", step: step)
            let v = PPOLoss.value(
                values: values, oldValues: chunk.map { buffer.values[$0] }, returns: chunk.map { buffer.returns[$0] },
                clipRange: config.cliprangeValue, coefficient: config.vfCoef)
            let c = frozen.config.hiddenSize, n = labeled.batch.tokenCount
            let dHidden = Scratch.buffer("ppo.dHidden", count: n * c)
            dHidden.pointer.update(repeating: 0, count: n * c)
            valueHead.backward(
                dValues: v.dValues.flatMap { $0.map { Float($0 * weight) } }, hidden: hidden.pointer, rows: positions,
                dHidden: dHidden.pointer)
            frozen.backward(dOutput: dHidden.pointer, acts: acts)
            phases.mark("critic")
            sums.tokens += Double(scored.batch.realTokens)
            if config.ptxCoef > 0 {
                let (nll, ptxTokens) = try ptxStep(demonstrations, step: step, microBatch: i, of: microBatches)
                sums.add("loss/ptx", nll / Double(microBatches), weight: 1 / Double(microBatches))
                sums.tokens += ptxTokens
                phases.mark("policy")
            }
            let returns = chunk.map { buffer.returns[$0] }
            var error = 0.0
            for (vs, rs) in zip(values, returns) { for (v, r) in zip(vs, rs) { error += (v - r) * (v - r) } }
            for (key, value) in [
                ("loss/policy_avg", p.policyLoss), ("loss/value_avg", v.valueLoss),
                ("loss", p.policyLoss + config.vfCoef * v.valueLoss), ("policy/clipfrac_avg", p.policyClipFraction),
                ("policy/approxkl_avg", p.approxKL), ("val/clipfrac_avg", v.valueClipFraction),
                // A sampled estimate of the policy's entropy: −mean log π(a_t) over the minibatch's tokens.
                ("policy/entropy_avg", -logProbs.joined().reduce(0, +) / Double(max(1, positions.count))),
                ("val/vpred", values.joined().reduce(0, +) / Double(max(1, positions.count))),
                ("val/error", error / Double(max(1, positions.count))),
            ] {
                sums.add(key, value * weight, weight: weight)
            }
        }
        // Before the iteration's first update the re-computed log-probs must equal the sampling ones.
        if within == 0 {
            if shard.size > 1 { drift = try loop.world.allReduceMax(drift) }
            sums.addOnce("rollout/logprob_max_abs_diff", drift, shard: shard)
            if drift > config.logprobDriftWarning { driftWarnings.append((step + 1, drift)) }
        }
        return sums
    }

    /// The next micro-batch of PPO-ptx demonstrations.
    func nextDemonstrations() -> [EncodedExample] {
        guard var ptx = ptxBatches else { return [] }
        defer { ptxBatches = ptx }
        return ptx.next().map { demonstrations[$0] }
    }

    /// PPO-ptx (Ouyang et al. 2022 eq. 2): backpropagates γ·(−mean log π)/`count` over one micro-batch of
    /// demonstrations. Returns its mean NLL and real tokens.
    func ptxStep(_ examples: [EncodedExample], step: Int, microBatch i: Int, of count: Int) throws -> (
        nll: Double, tokens: Double
    ) {
        guard !examples.isEmpty else { return (0, 0) }
        let labeled = LabeledBatch(rows: examples.map(\.ids), lossMask: examples.map(\.lossMask), padID: padID)
        acts.dropoutSeed = config.seed &+ UInt64(step) &* 1_000_003 &+ UInt64(i) &* 7919 &+ 1
        let scored = try loaded.model.score(labeled, adapter: adapter, into: acts, training: true)
        let k = Double(max(1, scored.logProbs.count))
        let scale = config.ptxCoef / (k * Double(count))
        loaded.model.backward(scored, dLogProbs: [Float](repeating: Float(-scale), count: scored.logProbs.count))
        return (-scored.logProbs.reduce(0.0) { $0 + Double($1) } / k, Double(scored.batch.realTokens))
    }

    /// One rollout chunk's completions with what the buffer needs of them (computed by the rank that owns it).
    struct ChunkRollouts {
        var rollouts: [Rollout] = []
        var sampled: [[Double]] = [], scores: [Double] = [], reference: [[Double]] = [], values: [[Double]] = []

        /// Row `j` as one list of numbers (token ids and flags exact in a Double), for `gatherRows`.
        func packed(_ j: Int) -> [Double] {
            let r = rollouts[j]
            let lengths = [r.promptIDs.count, r.completionIDs.count, sampled[j].count, reference[j].count]
            return lengths.map(Double.init) + [Double(values[j].count), r.stopped ? 1 : 0, scores[j]]
                + r.promptIDs.map(Double.init) + r.completionIDs.map(Double.init) + sampled[j] + reference[j]
                + values[j]
        }

        /// Appends a row `packed` wrote.
        mutating func append(packed row: [Double]) {
            var at = 7
            func take(_ n: Double) -> ArraySlice<Double> {
                defer { at += Int(n) }
                return row[at..<(at + Int(n))]
            }
            let prompt = take(row[0]).map { Int32($0) }, completion = take(row[1]).map { Int32($0) }
            rollouts.append(Rollout(promptIDs: prompt, completionIDs: completion, text: "", stopped: row[5] != 0))
            sampled.append(Array(take(row[2])))
            reference.append(Array(take(row[3])))
            values.append(Array(take(row[4])))
            scores.append(row[6])
        }
    }

    /// Samples completions for chunk `indices` (seeded by iteration and the chunk's first row) and scores them:
    /// the reward (missing-EOS penalty, clipping), reference log-probs and values, per micro-batch, no gradients.
    func rolloutChunk(_ indices: [Int], iteration: Int, start: Int) throws -> ChunkRollouts {
        let temperature = Float(config.temperature), b = config.training.batchSize
        var out = ChunkRollouts()
        phases.restart()
        let seed = config.seed &+ UInt64(iteration) &* 1_000_003 &+ UInt64(start) &* 7919
        let generated = try loaded.sampleRollouts(
            prompts: indices.map { data.train[$0] }, answers: indices.map { data.answers[$0] }, adapter: adapter,
            maxNewTokens: config.responseLength,
            sampling: SamplingOptions(temperature: temperature, topK: config.topK, topP: Float(config.topP), seed: seed)
        )
        out.rollouts = generated.rollouts
        out.sampled = generated.logProbs.map { $0.map(Double.init) }
        phases.mark("generation")
        out.scores = try reward(out.rollouts)
        phases.mark("scoring")
        for (j, r) in out.rollouts.enumerated() where !r.stopped { out.scores[j] -= config.missingEOSPenalty }
        if config.scoreClip > 0 { out.scores = out.scores.map { min(max($0, -config.scoreClip), config.scoreClip) } }
        var from = 0
        while from < out.rollouts.count {
            let part = Array(out.rollouts[from..<min(from + b, out.rollouts.count)])
            from += part.count
            let labeled = LabeledBatch(
                prompts: part.map(\.promptIDs), completions: part.map(\.completionIDs), padID: padID)
            let ref = try frozen.score(labeled, adapter: nil, into: acts, temperature: temperature)
            out.reference += part.indices.map { ref.tokenLogProbs(row: $0).map(Double.init) }
            phases.mark("reference")
            let hidden = frozen.forward(labeled.batch, adapter: critic, into: acts)
            let flat = valueHead.forward(hidden: hidden.pointer, rows: ref.scoredPositions)
            out.values += ref.rowRanges.map { $0.map { Double(flat[$0]) } }
            phases.mark("critic")
        }
        return out
    }

    /// Samples one completion per prompt of the next rollout batch and turns them into the iteration's buffer
    /// (old log-probs, values, advantages, returns). Returns the rollout metrics.
    func collectRollouts(iteration: Int, shard: Shard) throws -> MetricSums {
        var indices = batches.next()
        if indices.count < config.rolloutBatchSize { indices = batches.next() }  // drop_last, as TRL's loader
        // Each rank its chunks; then every rank gathers the whole batch.
        let rows = try loop.world.shareRows(count: indices.count, chunk: config.rolloutChunkSize) { range in
            let part = try rolloutChunk(Array(indices[range]), iteration: iteration, start: range.lowerBound)
            return part.rollouts.indices.map(part.packed)
        }
        var all = ChunkRollouts()
        for row in rows { all.append(packed: row) }
        let (rollouts, sampled, reference, values, scores) = (
            all.rollouts, all.sampled, all.reference, all.values, all.scores
        )
        let step = iteration * config.stepsPerIteration
        try Self.checkFinite(sampled, "rollout log-probs", step: step)
        try Self.checkFinite(reference, "reference log-probs", step: step)
        try Self.checkFinite(values, "values", step: step)
        let beta = state.controller.coefficient
        let sequenceKL = zip(sampled, reference).map { p, r in zip(p, r).reduce(0) { $0 + $1.0 - $1.1 } }
        let meanKL = sequenceKL.reduce(0, +) / Double(sequenceKL.count)
        try Self.checkKL(meanKL, tolerance: config.negativeKLTolerance, iteration: iteration)
        var rewards = RLMath.tokenRewards(
            policy: sampled, reference: reference, scores: scores, klCoefficient: beta, estimator: config.klEstimator)
        if config.whitenRewards { rewards = RLMath.whiten(rewards, shiftMean: false) }
        let (advantages, returns) = RLMath.gae(
            rewards: rewards, values: values, gamma: config.gamma, lambda: config.lam)
        state.rollouts = PPORollouts(
            iteration: iteration, prompts: rollouts.map(\.promptIDs), completions: rollouts.map(\.completionIDs),
            logProbs: sampled, values: values, advantages: RLMath.whiten(advantages), returns: returns)
        if config.adaptiveKL { state.controller.update(currentKL: meanKL, steps: rollouts.count) }
        // Rollout metrics (TRL's names), one record per iteration; every rank computed the same, counted once.
        let n = Double(rollouts.count)
        let nonScore = zip(sampled, reference).map { p, r in
            -beta * zip(p, r).reduce(0) { $0 + config.klEstimator.value(policy: $1.0, reference: $1.1) }
        }
        var sums = MetricSums()
        for (key, value) in [
            ("objective/kl", meanKL), ("objective/kl_coef", beta), ("objective/scores", scores.reduce(0, +) / n),
            ("objective/non_score_reward", nonScore.reduce(0, +) / n),
            ("objective/rlhf_reward", zip(scores, nonScore).reduce(0) { $0 + $1.0 + $1.1 } / n),
            ("objective/entropy", -sampled.reduce(0) { $0 + $1.reduce(0, +) } / n),
            ("val/num_eos_tokens", Double(rollouts.filter(\.stopped).count)),
            ("completions/mean_length", rollouts.reduce(0) { $0 + Double($1.completionIDs.count) } / n),
        ] {
            sums.addOnce(key, value, shard: shard)
        }
        if shard.rank == 0 && config.logSamplesEvery > 0 && iteration % config.logSamplesEvery == 0 {
            try logSamples(rollouts, scores: scores, kl: sequenceKL, step: step)
        }
        return sums
    }

    /// Appends the first rows of the iteration to `samples.jsonl` (prompt, completion, score, KL).
    func logSamples(_ rollouts: [Rollout], scores: [Double], kl: [Double], step: Int) throws {
        let url = loop.outputDirectory.appendingPathComponent("samples.jsonl")
        try FileManager.default.createDirectory(at: loop.outputDirectory, withIntermediateDirectories: true)
        let log = try MetricsLog(url: url)
        for j in rollouts.indices.prefix(Self.sampleRows) {
            try log.append(object: [
                "step": step, "prompt": loaded.tokenizer.decode(rollouts[j].promptIDs.map(Int.init)),
                "completion": loaded.tokenizer.decode(rollouts[j].completionIDs.map(Int.init), skipSpecialTokens: true),
                "score": scores[j], "kl": kl[j],
            ])
        }
    }

    /// Stops the run on a mean sequence KL below −`tolerance`: k1 is an unbiased estimate of a non-negative KL, so a
    /// clearly negative mean means the rollouts were not sampled from the distribution that was scored.
    static func checkKL(_ meanKL: Double, tolerance: Double, iteration: Int) throws {
        guard meanKL >= -tolerance else {
            throw ConfigError.invalid(
                field: "objective/kl", value: "\(meanKL) at iteration \(iteration + 1)",
                expected: "≥ −\(tolerance) (a negative KL means the sampling and scoring distributions differ: "
                    + "check temperature/top_k/top_p; the last checkpoint is intact)")
        }
    }

    static func checkFinite(_ x: [[Double]], _ what: String, step: Int) throws {
        guard x.allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
            throw ConfigError.invalid(
                field: what, value: "a non-finite value at step \(step + 1)",
                expected: "finite numbers (lower learning_rate; the last checkpoint is intact)")
        }
    }

    public func evaluate() throws -> Metrics? { nil }

    /// The policy (PEFT `adapter/` or the full `model/`) and the critic (`critic/`, a PEFT adapter with its
    /// `score` head). Returns the policy's directory.
    @discardableResult
    public func exportFinal() throws -> URL {
        try PEFTAdapter.save(
            critic, heads: [valueHead], baseModel: loop.identity.baseModel,
            to: loop.outputDirectory.appendingPathComponent(Self.criticName), overwrite: true)
        return try TrainableTarget.exportFinal(
            loaded: loaded, adapter: adapter, heads: [], baseModel: loop.identity.baseModel,
            to: loop.outputDirectory)
    }
}

/// One iteration's rollouts and what PPO's epochs need of them.
public struct PPORollouts: Codable, Sendable, Equatable {
    public var iteration: Int
    public var prompts: [[Int32]], completions: [[Int32]]
    /// log π_old of each completion token (the sampling log-probs).
    public var logProbs: [[Double]]
    public var values: [[Double]], advantages: [[Double]], returns: [[Double]]
}

/// What a PPO checkpoint holds beyond the loop's state: the KL controller and the iteration's buffer.
public struct PPOState: Codable, Sendable, Equatable {
    static let fileName = "ppo_state.json"
    public var controller: AdaptiveKLController
    public var rollouts: PPORollouts?
    public var ptxPosition: DataLoaderPosition?
}

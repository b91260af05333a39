// Best-of-n (rejection sampling; Nakano et al. 2021, Touvron et al. 2023 §3.2.3): n samples per prompt from a
// model, scored by a reward function; the best is kept. As a baseline it reports the mean best and mean sampled
// reward; for rejection-sampling fine-tuning its picks are written as SFT JSONL for `rlhf sft`.

import Datasets
import Foundation
import Models
import TensorCore

public enum BestOfN {
    public struct Pick: Sendable {
        public var promptIndex: Int
        public var completion: Rollout
        public var reward: Double
        /// Mean reward of the prompt's n samples.
        public var meanReward: Double
    }

    /// For every prompt, `n` completions from `loaded` (through `adapter`), the best kept. Sampling is seeded per
    /// batch of prompts, so a run is reproducible.
    public static func run(
        prompts: [[Int32]], answers: [String?] = [], model loaded: LoadedModel, adapter: LoRAAdapter? = nil,
        reward: RewardFunction, n: Int,
        maxNewTokens: Int, sampling: SamplingOptions, promptsPerBatch: Int = 4,
        progress: (Int) -> Void = { _ in }
    ) throws -> [Pick] {
        precondition(n >= 1 && promptsPerBatch >= 1, "n and the batch must be ≥ 1")
        var picks: [Pick] = []
        var start = 0
        while start < prompts.count {
            let chunk = Array(start..<min(start + promptsPerBatch, prompts.count))
            var options = sampling
            options.seed = sampling.seed &+ UInt64(start)
            let rows = chunk.flatMap { Array(repeating: $0, count: n) }
            let rollouts = try loaded.sampleRollouts(
                prompts: rows.map { prompts[$0] }, answers: rows.map { $0 < answers.count ? answers[$0] : nil },
                adapter: adapter, maxNewTokens: maxNewTokens, sampling: options
            ).rollouts
            let scores = try reward(rollouts)
            for (j, p) in chunk.enumerated() {
                let group = (j * n)..<((j + 1) * n)
                let best = group.max { scores[$0] < scores[$1] }!
                picks.append(
                    Pick(
                        promptIndex: p, completion: rollouts[best], reward: scores[best],
                        meanReward: group.reduce(0) { $0 + scores[$1] } / Double(n)))
            }
            start += chunk.count
            progress(start)
        }
        return picks
    }
}

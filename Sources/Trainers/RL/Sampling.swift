// Sampling rollouts from a policy: one place that turns generated sequences into `Rollout`s for PPO, GRPO/RLOO,
// best-of-n and the demo (the model's stop tokens, the completion decoded without special tokens, whether it
// stopped by itself, and the sampler's per-token log-probs for the rollout/re-score check).

import Models
import TensorCore

extension LoadedModel {
    /// One completion per row of `prompts` through `adapter` (nil: the bare model), sampled with `sampling`
    /// (greedy at temperature 0); `answers[i]` is carried into row i's rollout. Returns the rollouts and, for
    /// each, the log-probabilities the sampler gave its tokens.
    public func sampleRollouts(
        prompts: [[Int32]], answers: [String?] = [], adapter: LoRAAdapter?, maxNewTokens: Int,
        sampling: SamplingOptions
    ) throws -> (rollouts: [Rollout], logProbs: [[Float]]) {
        let generated = try model.generate(
            prompts: prompts, adapter: adapter,
            options: GenerationOptions(maxNewTokens: maxNewTokens, sampling: sampling, stopTokenIDs: stopTokenIDs))
        let rollouts = zip(prompts.indices, generated).map { i, g in
            Rollout(
                promptIDs: prompts[i], completionIDs: g.tokens.map(Int32.init),
                text: tokenizer.decode(g.tokens, skipSpecialTokens: true), stopped: g.finishReason == .stop,
                answer: i < answers.count ? answers[i] : nil)
        }
        return (rollouts, generated.map(\.tokenLogProbs))
    }
}

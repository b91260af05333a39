// Batched autoregressive generation with a KV cache: ragged prompts are left-padded (each row keeps
// its own RoPE positions), one prefill pass (a prompt given for several rows computed once), then one decode step
// per new token for the whole batch.
// Returns generated ids, per-token log-probs (for PPO) and why each row stopped.

import Foundation
import TensorCore

public enum FinishReason: String, Codable, Sendable { case stop, length }

public struct GenerationOptions: Sendable {
    public var maxNewTokens: Int
    public var sampling: SamplingOptions
    /// Token ids that end a row (EOS and friends); the stop token itself is included in the output.
    public var stopTokenIDs: Set<Int>
    public init(maxNewTokens: Int, sampling: SamplingOptions = .greedy, stopTokenIDs: Set<Int> = []) {
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stopTokenIDs = stopTokenIDs
    }
}

public struct GeneratedSequence: Sendable, Equatable {
    public var tokens: [Int] = []
    public var tokenLogProbs: [Float] = []
    public var finishReason: FinishReason = .length
}

extension LlamaModel {
    /// Generates continuations of every prompt through `adapter` (nil = the bare base).
    /// `onToken(row, token)` is called as tokens are chosen.
    ///
    /// - Throws: `ModelError.contextOverflow` when the longest prompt plus `maxNewTokens` exceeds the
    ///   model's positions (naming how far to lower `max_new_tokens`).
    public func generate(
        prompts: [[Int32]], adapter: LoRAAdapter? = nil, options: GenerationOptions,
        onToken: ((Int, Int) -> Void)? = nil
    ) throws -> [GeneratedSequence] {
        try generate(prompts: prompts, adapter: adapter, options: options, sharePrefill: true, onToken: onToken)
    }

    /// `generate`, with the prefill of repeated prompts shared or not (tests compare the two).
    func generate(
        prompts: [[Int32]], adapter: LoRAAdapter?, options: GenerationOptions, sharePrefill: Bool,
        onToken: ((Int, Int) -> Void)? = nil
    ) throws -> [GeneratedSequence] {
        precondition(!prompts.isEmpty && prompts.allSatisfy { !$0.isEmpty }, "every prompt needs at least one token")
        precondition(options.maxNewTokens >= 1, "generation needs max_new_tokens ≥ 1")
        let longest = prompts.map(\.count).max()!, limit = config.maxPositions
        guard options.maxNewTokens <= limit - longest else {  // (a sum could overflow)
            throw ModelError.contextOverflow(
                what: "a prompt of \(longest) tokens plus max_new_tokens \(options.maxNewTokens)",
                tokens: options.maxNewTokens > Int.max - longest ? Int.max : longest + options.maxNewTokens,
                limit: limit,
                hint: longest < limit
                    ? "Lower --max-new-tokens to at most \(limit - longest), or shorten the prompt."
                    : "Shorten the prompt below \(limit) tokens.")
        }
        let b = prompts.count, v = config.vocabularySize
        let cache = KVCache(
            config: config, batchSize: b, capacity: longest + options.maxNewTokens,
            adapter: adapter)
        var rng = RNG(seed: options.sampling.seed)
        var results = [GeneratedSequence](repeating: GeneratedSequence(), count: b)
        var done = [Bool](repeating: false, count: b)
        var nextPosition = prompts.map { Int32($0.count) }
        var hidden =
            sharePrefill
            ? prefillOnce(prompts, padID: prompts[0][0], into: cache)
            : forwardCached(TokenBatch(rows: prompts, padID: prompts[0][0], leftPadding: true), cache: cache)
        let logits = FloatBuffer(count: b * v)
        var uniforms = [Float](repeating: 0, count: b)
        var picks = [(token: Int, logProb: Float)](repeating: (0, 0), count: b)
        for step in 0..<options.maxNewTokens {
            self.logits(hidden.pointer, rows: b, into: logits.pointer)
            // One draw per live row in row order (the sequence a row-by-row loop would take), then the rows
            // are picked in parallel (~30 µs each over a 49k vocabulary).
            if !options.sampling.isGreedy { for r in 0..<b where !done[r] { uniforms[r] = rng.uniform() } }
            let live = done
            picks.withUnsafeMutableBufferPointer { out in
                parallelFor(b, cost: b * max(1, v / 1024)) { rows in  // ~0.5 µs per 1,024 logits of a row
                    for r in rows where !live[r] {
                        out[r] = Sampler.pick(
                            logits.pointer + r * v, vocabulary: v, options: options.sampling, uniform: uniforms[r])
                    }
                }
            }
            var next = [Int32](repeating: 0, count: b)
            for r in 0..<b {
                if done[r] { next[r] = Int32(results[r].tokens.last ?? 0); continue }
                let (token, logProb) = picks[r]
                results[r].tokens.append(token)
                results[r].tokenLogProbs.append(logProb)
                onToken?(r, token)
                next[r] = Int32(token)
                if options.stopTokenIDs.contains(token) {
                    done[r] = true
                    results[r].finishReason = .stop
                }
            }
            if done.allSatisfy({ $0 }) || step == options.maxNewTokens - 1 { break }
            let batch = TokenBatch(
                batchSize: b, length: 1, tokens: next, positions: nextPosition,
                keyMask: cache.hasMask ? [Float](repeating: 0, count: b) : nil)
            for r in 0..<b { nextPosition[r] += 1 }
            hidden = forwardCached(batch, cache: cache)
        }
        return results
    }

    /// Prefills `cache` with `prompts` (left-padded); a prompt given for several rows (GRPO's k samples) is
    /// computed once and its keys and values copied to each. Returns each row's last hidden state, [B, C].
    func prefillOnce(_ prompts: [[Int32]], padID: Int32, into cache: KVCache) -> FloatBuffer {
        var index: [[Int32]: Int] = [:], unique: [[Int32]] = []
        let ofRow = prompts.map { p in
            if let i = index[p] { return i }
            index[p] = unique.count
            unique.append(p)
            return unique.count - 1
        }
        guard unique.count < prompts.count else {
            return forwardCached(TokenBatch(rows: prompts, padID: padID, leftPadding: true), cache: cache)
        }
        let batch = TokenBatch(rows: unique, padID: padID, leftPadding: true)
        let once = KVCache(config: config, batchSize: unique.count, capacity: batch.length, adapter: cache.adapter)
        let h = forwardCached(batch, cache: once)
        cache.fill(from: once, rows: ofRow)
        let c = config.hiddenSize, out = FloatBuffer(count: prompts.count * c)
        for (b, from) in ofRow.enumerated() { (out.pointer + b * c).update(from: h.pointer + from * c, count: c) }
        return out
    }
}

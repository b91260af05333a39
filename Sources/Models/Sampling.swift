// Next-token selection from one row of logits: greedy, temperature, top-k and top-p (nucleus,
// Holtzman et al. 2020, §3.1), as transformers' logits processors apply them (temperature, then
// top-k, then top-p with at least one token kept).

import Foundation
import TensorCore

public struct SamplingOptions: Codable, Sendable, Equatable {
    /// 0 selects greedy decoding.
    public var temperature: Float = 1
    /// 0 disables top-k.
    public var topK: Int = 0
    /// 1 disables top-p.
    public var topP: Float = 1
    public var seed: UInt64 = 0
    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    public var isGreedy: Bool { temperature == 0 }
}

public enum Sampler {
    /// Picks a token from `logits[V]` and returns it with its log-probability under the sampling
    /// distribution before truncation: log softmax(logits / T) (T = 1 when greedy), as TRL scores rollouts.
    public static func pick(_ logits: UnsafeMutablePointer<Float>, vocabulary v: Int, options o: SamplingOptions,
                            rng: inout RNG) -> (token: Int, logProb: Float) {
        if o.isGreedy {
            let t = Reductions.argmax(logits, count: v)
            let lse = logSumExp(logits, v)
            return (t, logits[t] - lse)
        }
        if o.temperature != 1 { Elementwise.scale(logits, by: 1 / o.temperature, count: v) }
        let lse = logSumExp(logits, v)
        // Candidate set: indices sorted by logit, cut by top-k and top-p.
        var order = Array(0..<v)
        let k = o.topK > 0 ? min(o.topK, v) : v
        if k < v || o.topP < 1 {
            order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            order.removeSubrange(k...)
            if o.topP < 1 {
                let kept = order.map { exp(Double(logits[$0] - lse)) }
                let norm = kept.reduce(0, +)
                var cumulative = 0.0, cut = order.count
                for (i, p) in kept.enumerated() {
                    cumulative += p / norm
                    if cumulative >= Double(o.topP) { cut = i + 1; break }
                }
                order.removeSubrange(max(1, cut)...)
            }
        }
        let weights = order.map { exp(Double(logits[$0] - lse)) }
        let total = weights.reduce(0, +)
        var u = Double(rng.uniform()) * total
        var chosen = order[order.count - 1]
        for (i, w) in weights.enumerated() {
            u -= w
            if u < 0 { chosen = order[i]; break }
        }
        return (chosen, logits[chosen] - lse)
    }

    static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var lse: Float = 0
        withUnsafeMutablePointer(to: &lse) { LogSoftmax.logSumExp(out: $0, input: x, rows: 1, columns: n) }
        return lse
    }
}

// Next-token selection from one row of logits: greedy, temperature, top-k and top-p (nucleus,
// Holtzman et al. 2020, §3.1), as transformers' logits processors apply them (temperature, then
// top-k, then top-p with at least one token kept).

import Foundation
import TensorCore

/// How the next token is chosen. The defaults (written once, in the initializer) sample from the model's
/// distribution unchanged (transformers' temperature 1, no top-k/top-p), as RL rollouts need; `greedy` is
/// what generation uses unless told otherwise.
public struct SamplingOptions: Codable, Sendable, Equatable {
    /// 0 selects greedy decoding.
    public var temperature: Float
    /// 0 disables top-k.
    public var topK: Int
    /// 1 disables top-p.
    public var topP: Float
    public var seed: UInt64

    /// Greedy decoding (the default of `GenerationOptions` and of the CLI's `--temperature`).
    public static let greedy = SamplingOptions(temperature: 0)

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    public var isGreedy: Bool { temperature == 0 }

    /// The smallest sampling temperature the tools accept (0, greedy, aside): logits / T must stay finite in
    /// Float32, and below this the distribution is greedy in all but name (transformers fails on inf/NaN
    /// probabilities there; pass 0 for greedy).
    public static let minimumTemperature: Float = 1e-3
}

public enum Sampler {
    /// Picks a token from `logits[V]` and returns it with its log-probability under the sampling
    /// distribution before truncation: log softmax(logits / T) (T = 1 when greedy), as TRL scores rollouts.
    public static func pick(
        _ logits: UnsafeMutablePointer<Float>, vocabulary v: Int, options o: SamplingOptions,
        rng: inout RNG
    ) -> (token: Int, logProb: Float) {
        pick(logits, vocabulary: v, options: o, uniform: o.isGreedy ? 0 : rng.uniform())
    }

    /// `pick` with the one uniform draw in [0, 1) it consumes when sampling (unused when greedy), so rows can
    /// be picked in parallel after their draws were taken from one generator in row order.
    public static func pick(
        _ logits: UnsafeMutablePointer<Float>, vocabulary v: Int, options o: SamplingOptions,
        uniform: Float
    ) -> (token: Int, logProb: Float) {
        if o.isGreedy {
            let t = Reductions.argmax(logits, count: v)
            let lse = logSumExp(logits, v)
            return (t, logits[t] - lse)
        }
        if o.temperature != 1 { Elementwise.scale(logits, by: 1 / o.temperature, count: v) }
        let lse = logSumExp(logits, v)
        // Candidates in descending logit order (ties: lower id first), cut by top-k then top-p. Only the
        // candidates are sorted: a k-heap for top-k, else the tokens within 30 nats of the best (the rest
        // hold < V·e⁻³⁰ of the mass; if the nucleus still is not reached, every token is sorted).
        let k = o.topK > 0 ? min(o.topK, v) : v
        var order: [Int]
        if k < v {
            order = topK(logits, count: v, k: k)
        } else if o.topP < 1 {
            let floor = Reductions.max(logits, count: v) - 30
            order = (0..<v).filter { logits[$0] >= floor }.sorted { better(logits, $0, $1) }
        } else {
            order = Array(0..<v)
        }
        if o.topP < 1 {
            // Top-k renormalises over its k tokens; without top-k the total mass is 1 (lse covers all).
            let norm = k < v ? order.reduce(0.0) { $0 + exp(Double(logits[$1] - lse)) } : 1
            var cut = cutNucleus(order, logits, lse: lse, norm: norm, p: o.topP)
            if cut == nil && k == v && order.count < v {
                order = (0..<v).sorted { better(logits, $0, $1) }
                cut = cutNucleus(order, logits, lse: lse, norm: norm, p: o.topP)
            }
            order.removeSubrange(max(1, cut ?? order.count)...)
        }
        let weights = order.map { exp(Double(logits[$0] - lse)) }
        let total = weights.reduce(0, +)
        var u = Double(uniform) * total
        var chosen = order[order.count - 1]
        for (i, w) in weights.enumerated() {
            u -= w
            if u < 0 { chosen = order[i]; break }
        }
        return (chosen, logits[chosen] - lse)
    }

    /// Descending by logit, ties to the lower id.
    @inline(__always) static func better(_ z: UnsafePointer<Float>, _ a: Int, _ b: Int) -> Bool {
        z[a] > z[b] || (z[a] == z[b] && a < b)
    }

    /// The k best ids in order, via a min-heap of size k: O(V log k) instead of sorting V.
    static func topK(_ z: UnsafePointer<Float>, count v: Int, k: Int) -> [Int] {
        var heap: [Int] = []  // heap[0] is the worst kept id
        heap.reserveCapacity(k)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var worst = i
                if l < heap.count && better(z, heap[worst], heap[l]) { worst = l }
                if r < heap.count && better(z, heap[worst], heap[r]) { worst = r }
                if worst == i { return }
                heap.swapAt(i, worst)
                i = worst
            }
        }
        for id in 0..<v {
            if heap.count < k {
                heap.append(id)
                var i = heap.count - 1
                while i > 0 && better(z, heap[(i - 1) / 2], heap[i]) { heap.swapAt(i, (i - 1) / 2); i = (i - 1) / 2 }
            } else if better(z, id, heap[0]) {
                heap[0] = id
                siftDown(0)
            }
        }
        return heap.sorted { better(z, $0, $1) }
    }

    /// Length of the shortest prefix of `order` whose probability reaches p, nil if none does.
    static func cutNucleus(_ order: [Int], _ z: UnsafePointer<Float>, lse: Float, norm: Double, p: Float) -> Int? {
        var cumulative = 0.0
        for (i, id) in order.enumerated() {
            cumulative += exp(Double(z[id] - lse)) / norm
            if cumulative >= Double(p) { return i + 1 }
        }
        return nil
    }

    static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var lse: Float = 0
        withUnsafeMutablePointer(to: &lse) { LogSoftmax.logSumExp(out: $0, input: x, rows: 1, columns: n) }
        return lse
    }
}

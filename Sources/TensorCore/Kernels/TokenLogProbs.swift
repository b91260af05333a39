// Vocabulary projection fused with token log-probabilities, computed in row chunks so the full
// [tokens × vocab] logit matrix never exists: only a [chunk × V] block does, reused for every chunk.
// N = tokens, C = hidden channels, V = vocabulary; W is [V, C] (tied embedding or lm_head).
//   z = h Wᵀ,   logp_n = z_n[t_n] − logsumexp(z_n)
// Any loss that is a function of per-token log-probs (cross-entropy, DPO, PPO, …) backpropagates by
// handing `backward` its gradient ∂L/∂logp_n; ∂logp_n/∂z_n = onehot(t_n) − softmax(z_n).
// Cross-entropy (mean over counted tokens) is L = −Σ logp_n / count, i.e. ∂L/∂logp_n = −1/count.
// Targets < 0 are ignored (log-prob 0, no gradient), like PyTorch's ignore_index = −100.

import _CKernels

public enum TokenLogProbs {
    /// Logits held at once: 48 Mi floats (192 MB), i.e. 1,024 rows of SmolLM2's 49,152-token vocabulary
    /// (331 of Qwen2.5's 151,936). Chunks of 1,024 rows run the vocabulary GEMMs ~8 % faster than 256
    /// (OpenBLAS packs the 113 MB weight once per call; `Benchmarks train-gemms`).
    public static let chunkBudgetFloats = 48 << 20

    /// Rows per chunk for a vocabulary of `v` tokens (at least 16).
    public static func defaultChunkRows(vocabulary v: Int) -> Int { max(16, chunkBudgetFloats / max(v, 1)) }

    /// Writes logProbs[N] and lse[N] (saved for backward).
    /// `predictions` (optional) receives each row's argmax token (for token accuracy).
    public static func forward(
        logProbs: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
        hidden: UnsafePointer<Float>, weight: WeightMatrix, targets: UnsafePointer<Int32>,
        rows n: Int, channels c: Int, vocabulary v: Int, chunkRows: Int? = nil,
        predictions: UnsafeMutablePointer<Int32>? = nil
    ) {
        forEachLogitChunk(hidden: hidden, weight: weight, rows: n, channels: c, vocabulary: v, chunkRows: chunkRows) {
            start, m, lp in
            parallelFor(m) { rows in
                for r in rows {
                    let z = lp + r * v
                    let l = rk_logsumexp_row(z, v)
                    let t = Int(targets[start + r])
                    lse[start + r] = l
                    logProbs[start + r] = t >= 0 ? z[t] - l : 0
                    predictions?[start + r] = Int32(Reductions.argmax(z, count: v))
                }
            }
        }
    }

    /// Computes logits z = h Wᵀ for `chunkRows` rows at a time into one reused [chunk, V] buffer and
    /// hands each chunk to `body(firstRow, rowCount, logits)`.
    static func forEachLogitChunk(
        hidden: UnsafePointer<Float>, weight: WeightMatrix, rows n: Int, channels c: Int, vocabulary v: Int,
        chunkRows: Int?, _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void
    ) {
        let chunk = max(1, min(chunkRows ?? defaultChunkRows(vocabulary: v), n))
        let lp = Scratch.buffer("logits", count: chunk * v).pointer
        var start = 0
        while start < n {
            let m = min(chunk, n - start)
            weight.forward(out: lp, input: hidden + start * c, rows: m, inFeatures: c, outFeatures: v)
            body(start, m, lp)
            start += m
        }
    }

    /// forward: logp_n = z_n[t_n] − lse(z_n)  ⇒  dz_n = g_n · (onehot(t_n) − softmax(z_n)),
    /// dh = dz W (written), dW += dzᵀ h. `dLogProbs` = g = ∂L/∂logp. Recomputes each logit chunk.
    public static func backward(
        dHidden: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?,
        dLogProbs: UnsafePointer<Float>, hidden: UnsafePointer<Float>, weight: WeightMatrix,
        targets: UnsafePointer<Int32>, lse: UnsafePointer<Float>,
        rows n: Int, channels c: Int, vocabulary v: Int, chunkRows: Int? = nil
    ) {
        forEachLogitChunk(hidden: hidden, weight: weight, rows: n, channels: c, vocabulary: v, chunkRows: chunkRows) {
            start, m, lp in
            parallelFor(m) { rows in
                for r in rows {
                    let t = targets[start + r]
                    // dz = −g·(softmax − onehot): the kernel writes coeff·(softmax − onehot) with coeff = −g.
                    let g = t >= 0 ? dLogProbs[start + r] : 0
                    rk_softmax_xent_grad_row(lp + r * v, lse[start + r], t, -g, v)
                }
            }
            weight.backward(
                dInput: dHidden + start * c, dWeight: dWeight, dOut: lp, input: hidden + start * c,
                rows: m, inFeatures: c, outFeatures: v)
        }
    }

    /// Forward and backward in one pass when ∂L/∂logp is known before the forward (cross-entropy,
    /// SFT): one logit GEMM per chunk instead of two, and only for rows that have a target. Returns
    /// Σ_n counted logp_n; writes logProbs[N] (0 for ignored rows) and the argmax `predictions`[N]
    /// (−1 for ignored rows) when given.
    @discardableResult
    public static func forwardBackward(
        dHidden: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?,
        logProbs: UnsafeMutablePointer<Float>?, dLogProbs: UnsafePointer<Float>,
        hidden: UnsafePointer<Float>, weight: WeightMatrix, targets: UnsafePointer<Int32>,
        rows n: Int, channels c: Int, vocabulary v: Int, chunkRows: Int? = nil,
        predictions: UnsafeMutablePointer<Int32>? = nil
    ) -> Double {
        // Rows without a target (prompt, padding) need no logits at all: compact the counted rows first.
        var counted: [Int] = []
        counted.reserveCapacity(n)
        for i in 0..<n where targets[i] >= 0 { counted.append(i) }
        if counted.count < n {
            let k = counted.count
            dHidden.update(repeating: 0, count: n * c)
            logProbs?.update(repeating: 0, count: n)
            predictions?.update(repeating: -1, count: n)
            if k == 0 { return 0 }
            let h = Scratch.buffer("logprobs.hidden", count: k * c).pointer,
                dh = Scratch.buffer("logprobs.dHidden", count: k * c).pointer
            var t = [Int32](repeating: 0, count: k), g = [Float](repeating: 0, count: k)
            var lp = [Float](repeating: 0, count: k), pred = [Int32](repeating: -1, count: k)
            for (j, i) in counted.enumerated() {
                (h + j * c).update(from: hidden + i * c, count: c)
                t[j] = targets[i]
                g[j] = dLogProbs[i]
            }
            let total = t.withUnsafeBufferPointer { tp in
                lp.withUnsafeMutableBufferPointer { lpp in
                    pred.withUnsafeMutableBufferPointer { pp in
                        forwardBackward(
                            dHidden: dh, dWeight: dWeight, logProbs: lpp.baseAddress, dLogProbs: g, hidden: h,
                            weight: weight,
                            targets: tp.baseAddress!, rows: k, channels: c, vocabulary: v, chunkRows: chunkRows,
                            predictions: pp.baseAddress)
                    }
                }
            }
            for (j, i) in counted.enumerated() {
                (dHidden + i * c).update(from: dh + j * c, count: c)
                logProbs?[i] = lp[j]
                predictions?[i] = pred[j]
            }
            return total
        }
        let rowLogProb = FloatBuffer(count: n)
        let rp = rowLogProb.pointer
        forEachLogitChunk(hidden: hidden, weight: weight, rows: n, channels: c, vocabulary: v, chunkRows: chunkRows) {
            start, m, lp in
            parallelFor(m) { rows in
                for r in rows {
                    let z = lp + r * v
                    let t = targets[start + r]
                    let l = rk_logsumexp_row(z, v)
                    rp[start + r] = t >= 0 ? z[Int(t)] - l : 0
                    predictions?[start + r] = Int32(Reductions.argmax(z, count: v))
                    rk_softmax_xent_grad_row(z, l, t, t >= 0 ? -dLogProbs[start + r] : 0, v)
                }
            }
            weight.backward(
                dInput: dHidden + start * c, dWeight: dWeight, dOut: lp, input: hidden + start * c,
                rows: m, inFeatures: c, outFeatures: v)
        }
        if let logProbs { logProbs.update(from: rp, count: n) }
        var total = 0.0
        for i in 0..<n { total += Double(rp[i]) }
        return total
    }
}

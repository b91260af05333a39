// Causal multi-head scaled dot-product attention with grouped-query heads (Vaswani et al. 2017, Eq. 1;
// GQA: Ainslie et al. 2023). B = batch, Tq/Tk = query/key lengths, Hq/Hkv = query/key-value heads,
// D = head dim; query head h reads key-value head h / (Hq/Hkv).
//   S = Q Kᵀ / √D + mask,  P = softmax(S) (causal),  O = P V
// Only the row log-sum-exp is saved; backward recomputes P from Q, K and lse (one extra Tq×Tk×D GEMM
// instead of B·Hq·Tq·Tk floats of activation memory per layer).
// Query t sits at absolute position t + (Tk − Tq) and sees keys j ≤ that position, so the same kernel
// serves training (Tq = Tk) and KV-cached decoding (Tq < Tk). The additive key mask (0 or −∞ per key,
// e.g. for left or right padding) is added to every query row; a row whose keys are all masked
// outputs zeros.

import _CKernels

public struct AttentionShape: Sendable {
    public var batch: Int
    public var queryLength: Int
    public var keyLength: Int
    public var queryHeads: Int
    public var kvHeads: Int
    public var headDim: Int
    /// Floats between consecutive batch rows of K and V (≥ keyLength·kvHeads·headDim; larger for a KV cache).
    public var kvBatchStride: Int
    /// Floats between consecutive batch rows of the key mask (≥ keyLength).
    public var maskBatchStride: Int

    public init(batch: Int, queryLength: Int, keyLength: Int, queryHeads: Int, kvHeads: Int, headDim: Int,
                kvBatchStride: Int? = nil, maskBatchStride: Int? = nil) {
        precondition(queryHeads % kvHeads == 0, "query heads \(queryHeads) not a multiple of kv heads \(kvHeads)")
        precondition(keyLength >= queryLength, "key length \(keyLength) < query length \(queryLength)")
        self.batch = batch
        self.queryLength = queryLength
        self.keyLength = keyLength
        self.queryHeads = queryHeads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.kvBatchStride = kvBatchStride ?? keyLength * kvHeads * headDim
        self.maskBatchStride = maskBatchStride ?? keyLength
    }
}

public enum Attention {
    /// Scratch budget for score matrices; (batch, head) pairs are processed in groups that fit.
    static let scratchFloats = 8 << 20

    /// out[B,Tq,Hq,D] and lse[B,Hq,Tq] from q[B,Tq,Hq,D], k/v[B,·,Hkv,D], keyMask[B,·] (additive) or nil.
    public static func forward(
        out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        keyMask: UnsafePointer<Float>?, shape s: AttentionShape
    ) {
        if usesPairParallelism(s) {
            forwardByPairs(out: out, lse: lse, q: q, k: k, v: v, keyMask: keyMask, shape: s)
            return
        }
        let tq = s.queryLength, tk = s.keyLength, d = s.headDim
        let pairs = s.batch * s.queryHeads
        let group = max(1, min(pairs, scratchFloats / max(tq * tk, 1)))
        let sp = Scratch.buffer("attention.scores", count: group * tq * tk).pointer
        let scale = 1 / Float(d).squareRoot()
        var first = 0
        while first < pairs {
            let count = min(group, pairs - first)
            for j in 0..<count {  // S = Q Kᵀ / √D
                let (b, h) = ((first + j) / s.queryHeads, (first + j) % s.queryHeads)
                MatMul.gemm(sp + j * tq * tk, q + queryOffset(b, h, s), lda: s.queryHeads * d,
                            k + kvOffset(b, h, s), ldb: s.kvHeads * d, transB: true,
                            m: tq, n: tk, k: d, alpha: scale)
            }
            parallelFor(count * tq, grain: max(1, 1024 / max(tk, 1))) { rows in  // P = softmax(S + mask)
                for r in rows {
                    let (j, t) = (r / tq, r % tq)
                    let (b, h) = ((first + j) / s.queryHeads, (first + j) % s.queryHeads)
                    let valid = min(tk, t + tk - tq + 1)
                    let mask = keyMask.map { $0 + b * s.maskBatchStride }
                    lse[(b * s.queryHeads + h) * tq + t] = rk_softmax_row(sp + r * tk, mask, valid, tk)
                }
            }
            for j in 0..<count {  // O = P V
                let (b, h) = ((first + j) / s.queryHeads, (first + j) % s.queryHeads)
                MatMul.gemm(out + queryOffset(b, h, s), ldc: s.queryHeads * d, sp + j * tq * tk,
                            v + kvOffset(b, h, s), ldb: s.kvHeads * d, m: tq, n: d, k: tk)
            }
            first += count
        }
    }

    /// forward: S = QKᵀ/√D, P = softmax(S), O = PV  ⇒  dV = Pᵀ dO,  dP = dO Vᵀ,
    /// dS = P ⊙ (dP − rowsum(dO ⊙ O)),  dQ = dS K / √D,  dK = dSᵀ Q / √D.
    /// Writes dq; accumulates into dk and dv (several query heads share one kv head), which use the
    /// same strides as k and v.
    public static func backward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        dOut: UnsafePointer<Float>, out: UnsafePointer<Float>, lse: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        keyMask: UnsafePointer<Float>?, shape s: AttentionShape
    ) {
        if usesPairParallelism(s) {
            backwardByGroups(dq: dq, dk: dk, dv: dv, dOut: dOut, out: out, lse: lse, q: q, k: k, v: v, keyMask: keyMask, shape: s)
            return
        }
        let tq = s.queryLength, tk = s.keyLength, d = s.headDim
        let pairs = s.batch * s.queryHeads
        let group = max(1, min(pairs, scratchFloats / 2 / max(tq * tk, 1)))
        let pp = Scratch.buffer("attention.scores", count: group * tq * tk).pointer
        let gp = Scratch.buffer("attention.grads", count: group * tq * tk).pointer
        let scale = 1 / Float(d).squareRoot()
        let qld = s.queryHeads * d, kvld = s.kvHeads * d
        var first = 0
        while first < pairs {
            let count = min(group, pairs - first)
            for j in 0..<count {
                let (b, h) = ((first + j) / s.queryHeads, (first + j) % s.queryHeads)
                MatMul.gemm(pp + j * tq * tk, q + queryOffset(b, h, s), lda: qld,
                            k + kvOffset(b, h, s), ldb: kvld, transB: true, m: tq, n: tk, k: d, alpha: scale)
                MatMul.gemm(gp + j * tq * tk, dOut + queryOffset(b, h, s), lda: qld,
                            v + kvOffset(b, h, s), ldb: kvld, transB: true, m: tq, n: tk, k: d)
            }
            parallelFor(count * tq, grain: max(1, 1024 / max(tk, 1))) { rows in
                for r in rows {
                    let (j, t) = (r / tq, r % tq)
                    let (b, h) = ((first + j) / s.queryHeads, (first + j) % s.queryHeads)
                    let valid = min(tk, t + tk - tq + 1)
                    let mask = keyMask.map { $0 + b * s.maskBatchStride }
                    let p = pp + r * tk, g = gp + r * tk
                    rk_softmax_recompute_row(p, mask, lse[(b * s.queryHeads + h) * tq + t], valid, tk)
                    let o = queryOffset(b, h, s) + t * qld
                    let delta = Reductions.dot(dOut + o, out + o, count: d)
                    for i in 0..<tk { g[i] = p[i] * (g[i] - delta) }
                }
            }
            for j in 0..<count {
                let (b, h) = ((first + j) / s.queryHeads, (first + j) % s.queryHeads)
                let qo = queryOffset(b, h, s), kvo = kvOffset(b, h, s)
                MatMul.gemm(dv + kvo, ldc: kvld, pp + j * tq * tk, transA: true, dOut + qo, ldb: qld,
                            m: tk, n: d, k: tq, beta: 1)
                MatMul.gemm(dq + qo, ldc: qld, gp + j * tq * tk, k + kvo, ldb: kvld,
                            m: tq, n: d, k: tk, alpha: scale)
                MatMul.gemm(dk + kvo, ldc: kvld, gp + j * tq * tk, transA: true, q + qo, ldb: qld,
                            m: tk, n: d, k: tq, alpha: scale, beta: 1)
            }
            first += count
        }
    }

    @inline(__always) static func queryOffset(_ b: Int, _ h: Int, _ s: AttentionShape) -> Int {
        b * s.queryLength * s.queryHeads * s.headDim + h * s.headDim
    }

    @inline(__always) static func kvOffset(_ b: Int, _ h: Int, _ s: AttentionShape) -> Int {
        b * s.kvBatchStride + (h / (s.queryHeads / s.kvHeads)) * s.headDim
    }
}

extension Attention {
    /// Decoding path for a few query rows per sequence (Tq ≤ 4, keys from a KV cache): direct SIMD dot
    /// products per (batch, head), parallel over pairs, instead of many tiny GEMMs. Same semantics as
    /// `forward` (causal offset, additive key mask, zero rows when fully masked). No lse output.
    public static func forwardDecode(
        out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        keyMask: UnsafePointer<Float>?, shape s: AttentionShape
    ) {
        let tq = s.queryLength, tk = s.keyLength, d = s.headDim
        let pairs = s.batch * s.queryHeads
        let scale = 1 / Float(d).squareRoot()
        let kvld = s.kvHeads * d, qld = s.queryHeads * d
        let scratch = Scratch.buffer("attention.decode", count: ThreadPool.shared.threadCount * tk)
        let chunks = pairs * tq * tk >= 4096 ? ThreadPool.shared.threadCount : 1
        parallelFor(chunks, cost: pairs * tq * tk / 1024) { parts in
            for part in parts {
                let scores = scratch.pointer + part * tk
                for pair in (pairs * part / chunks)..<(pairs * (part + 1) / chunks) {
                    let (b, h) = (pair / s.queryHeads, pair % s.queryHeads)
                    let kb = k + kvOffset(b, h, s), vb = v + kvOffset(b, h, s)
                    let mask = keyMask.map { $0 + b * s.maskBatchStride }
                    for t in 0..<tq {
                        let qo = queryOffset(b, h, s) + t * qld
                        let valid = min(tk, t + tk - tq + 1)
                        for j in 0..<valid { scores[j] = Reductions.dot(q + qo, kb + j * kvld, count: d) * scale }
                        let lse = rk_softmax_row(scores, mask, valid, tk)
                        let o = out + qo
                        o.update(repeating: 0, count: d)
                        if lse == -.infinity { continue }
                        for j in 0..<valid where scores[j] != 0 { Elementwise.axpy(o, scores[j], vb + j * kvld, count: d) }
                    }
                }
            }
        }
    }
}

extension Attention {
    /// With single-threaded BLAS calls (`MatMul.Mode.poolSplit`), whole (batch, head) problems go to
    /// different threads instead of splitting each small GEMM: one dispatch per layer, not dozens.
    static func usesPairParallelism(_ s: AttentionShape) -> Bool {
        MatMul.mode == .poolSplit && ThreadPool.shared.threadCount > 1 && s.queryLength > 4
            && s.batch * s.queryHeads >= ThreadPool.shared.threadCount
    }

    /// One (batch, query head) per task: S = QKᵀ/√D, softmax rows, O = PV, with per-thread scratch.
    static func forwardByPairs(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                               k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyMask: UnsafePointer<Float>?, shape s: AttentionShape) {
        let tq = s.queryLength, tk = s.keyLength, d = s.headDim, qld = s.queryHeads * d, kvld = s.kvHeads * d
        let scale = 1 / Float(d).squareRoot()
        parallelFor(s.batch * s.queryHeads, cost: Int.max / 2) { pairs in
            let sp = Scratch.buffer("attention.pair.scores", count: tq * tk).pointer
            for pair in pairs {
                let (b, h) = (pair / s.queryHeads, pair % s.queryHeads)
                MatMul.gemm(sp, q + queryOffset(b, h, s), lda: qld, k + kvOffset(b, h, s), ldb: kvld, transB: true,
                            m: tq, n: tk, k: d, alpha: scale)
                let mask = keyMask.map { $0 + b * s.maskBatchStride }
                for t in 0..<tq {
                    lse[(b * s.queryHeads + h) * tq + t] = rk_softmax_row(sp + t * tk, mask, min(tk, t + tk - tq + 1), tk)
                }
                MatMul.gemm(out + queryOffset(b, h, s), ldc: qld, sp, v + kvOffset(b, h, s), ldb: kvld, m: tq, n: d, k: tk)
            }
        }
    }

    /// One (batch, kv head) per task — all query heads sharing it — so dK and dV accumulate without races.
    static func backwardByGroups(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                 dOut: UnsafePointer<Float>, out: UnsafePointer<Float>, lse: UnsafePointer<Float>,
                                 q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                 keyMask: UnsafePointer<Float>?, shape s: AttentionShape) {
        let tq = s.queryLength, tk = s.keyLength, d = s.headDim, qld = s.queryHeads * d, kvld = s.kvHeads * d
        let scale = 1 / Float(d).squareRoot(), perGroup = s.queryHeads / s.kvHeads
        parallelFor(s.batch * s.kvHeads, cost: Int.max / 2) { groups in
            let pp = Scratch.buffer("attention.pair.scores", count: tq * tk).pointer
            let gp = Scratch.buffer("attention.pair.grads", count: tq * tk).pointer
            for group in groups {
                let b = group / s.kvHeads
                for h in ((group % s.kvHeads) * perGroup)..<((group % s.kvHeads + 1) * perGroup) {
                    let qo = queryOffset(b, h, s), kvo = kvOffset(b, h, s)
                    MatMul.gemm(pp, q + qo, lda: qld, k + kvo, ldb: kvld, transB: true, m: tq, n: tk, k: d, alpha: scale)
                    MatMul.gemm(gp, dOut + qo, lda: qld, v + kvo, ldb: kvld, transB: true, m: tq, n: tk, k: d)
                    let mask = keyMask.map { $0 + b * s.maskBatchStride }
                    for t in 0..<tq {
                        let p = pp + t * tk, g = gp + t * tk
                        rk_softmax_recompute_row(p, mask, lse[(b * s.queryHeads + h) * tq + t], min(tk, t + tk - tq + 1), tk)
                        let o = qo + t * qld
                        let delta = Reductions.dot(dOut + o, out + o, count: d)
                        for i in 0..<tk { g[i] = p[i] * (g[i] - delta) }
                    }
                    MatMul.gemm(dv + kvo, ldc: kvld, pp, transA: true, dOut + qo, ldb: qld, m: tk, n: d, k: tq, beta: 1)
                    MatMul.gemm(dq + qo, ldc: qld, gp, k + kvo, ldb: kvld, m: tq, n: d, k: tk, alpha: scale)
                    MatMul.gemm(dk + kvo, ldc: kvld, gp, transA: true, q + qo, ldb: qld, m: tk, n: d, k: tq, alpha: scale, beta: 1)
                }
            }
        }
    }
}


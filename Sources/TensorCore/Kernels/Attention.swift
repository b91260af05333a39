// Causal multi-head scaled dot-product attention with grouped-query heads (Vaswani et al. 2017, Eq. 1;
// GQA: Ainslie et al. 2023). B = batch, Tq/Tk = query/key lengths, Hq/Hkv = query/key-value heads,
// D = head dim; query head h reads key-value head h / (Hq/Hkv).
//   S = Q Kᵀ / √D + mask,  P = softmax(S) (causal),  O = P V
// Only the row log-sum-exp is saved; backward recomputes P from Q, K and lse (one extra Tq×Tk×D GEMM
// instead of B·Hq·Tq·Tk floats of activation memory per layer); scores need only Tq×Tk of scratch per thread.
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
    /// out[B,Tq,Hq,D] and lse[B,Hq,Tq] from q[B,Tq,Hq,D], k/v[B,·,Hkv,D], keyMask[B,·] (additive) or nil.
    /// One (batch, query head) at a time: S = QKᵀ/√D, softmax rows (lse saved), O = PV.
    public static func forward(
        out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        keyMask: UnsafePointer<Float>?, shape s: AttentionShape
    ) {
        let tq = s.queryLength, tk = s.keyLength, d = s.headDim, qld = s.queryHeads * d, kvld = s.kvHeads * d
        let scale = 1 / Float(d).squareRoot()
        forEachTask(s.batch * s.queryHeads) { pairs in
            let sp = Scratch.buffer("attention.scores", count: tq * tk).pointer
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

    /// forward: S = QKᵀ/√D, P = softmax(S), O = PV  ⇒  dV = Pᵀ dO,  dP = dO Vᵀ,
    /// dS = P ⊙ (dP − rowsum(dO ⊙ O)),  dQ = dS K / √D,  dK = dSᵀ Q / √D.
    /// Writes dq; accumulates into dk and dv (several query heads share one kv head), which use the
    /// same strides as k and v. One (batch, kv head) group — all its query heads — per task, so dK and
    /// dV accumulate without races.
    public static func backward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        dOut: UnsafePointer<Float>, out: UnsafePointer<Float>, lse: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        keyMask: UnsafePointer<Float>?, shape s: AttentionShape
    ) {
        let tq = s.queryLength, tk = s.keyLength, d = s.headDim, qld = s.queryHeads * d, kvld = s.kvHeads * d
        let scale = 1 / Float(d).squareRoot(), perGroup = s.queryHeads / s.kvHeads
        forEachTask(s.batch * s.kvHeads) { groups in
            let pp = Scratch.buffer("attention.scores", count: tq * tk).pointer
            let gp = Scratch.buffer("attention.grads", count: tq * tk).pointer
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

    /// Independent (batch, head) problems go to different threads when GEMMs are single-threaded BLAS
    /// calls (`MatMul.Mode.poolSplit`): one dispatch per layer, each GEMM whole. With OpenBLAS threads
    /// (`.blasThreads`) they run one after another and each GEMM uses OpenBLAS's threads.
    static func forEachTask(_ count: Int, _ body: (Range<Int>) -> Void) {
        if MatMul.mode == .poolSplit { parallelFor(count, cost: Int.max / 2, body) } else { body(0..<count) }
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

// Causal multi-head scaled dot-product attention with grouped-query heads (Vaswani et al. 2017, Eq. 1;
// GQA: Ainslie et al. 2023). B = batch, Tq/Tk = query/key lengths, Hq/Hkv = query/key-value heads,
// D = head dim; query head h reads key-value head h / (Hq/Hkv).
//   S = Q Kᵀ / √D + mask,  P = softmax(S) (causal),  O = P V
// Only the row log-sum-exp is saved; backward recomputes P from Q, K and lse (one extra Tq×Tk×D GEMM
// instead of B·Hq·Tq·Tk floats of activation memory per layer); scores need only Tq×Tk of scratch per thread.
// Query rows go in blocks whose products stop at the block's last visible key (causal skipping): with
// AVX-512 and D a multiple of 16, blocks of 16 rows in fused C kernels (scores in registers and a small
// scratch, lane = query row); otherwise blocks of 32 rows through sgemm.
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
    /// Floats between consecutive positions of one KV head (default kvHeads·headDim: [B, T, Hkv, D]).
    public var kvRowStride: Int
    /// Floats between consecutive KV heads of one position (default headDim). A KV cache stored
    /// [B, Hkv, capacity, D] (rows headDim apart, heads capacity·headDim apart) keeps each head's keys contiguous.
    public var kvHeadStride: Int
    /// Floats between consecutive batch rows of the key mask (≥ keyLength).
    public var maskBatchStride: Int

    public init(
        batch: Int, queryLength: Int, keyLength: Int, queryHeads: Int, kvHeads: Int, headDim: Int,
        kvBatchStride: Int? = nil, maskBatchStride: Int? = nil, kvRowStride: Int? = nil, kvHeadStride: Int? = nil
    ) {
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
        self.kvRowStride = kvRowStride ?? kvHeads * headDim
        self.kvHeadStride = kvHeadStride ?? headDim
    }
}

public enum Attention {
    /// out[B,Tq,Hq,D] and lse[B,Hq,Tq] from q[B,Tq,Hq,D], k/v[B,·,Hkv,D], keyMask[B,·] (additive) or nil.
    /// One (batch, query head) at a time: S = QKᵀ/√D, softmax rows (lse saved), O = PV.
    public static func forward(
        out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        keyMask: UnsafePointer<Float>?, shape s: AttentionShape, queryBlock: Int = Attention.queryBlock
    ) {
        let tq = s.queryLength, tk = s.keyLength, d = s.headDim, qld = s.queryHeads * d, kvld = s.kvRowStride
        let scale = 1 / Float(d).squareRoot()
        forEachTask(s.batch * s.queryHeads) { pairs in
            let sp = Scratch.buffer("attention.scores", count: max(tq * tk, tk * 16)).pointer
            let qt = Scratch.buffer("attention.qt", count: d * 16).pointer
            for pair in pairs {
                let (b, h) = (pair / s.queryHeads, pair % s.queryHeads)
                let qo = queryOffset(b, h, s), kvo = kvOffset(b, h, s)
                let mask = keyMask.map { $0 + b * s.maskBatchStride }
                if fused(s) {  // blocks of 16 query rows in the fused C kernel (0 = shape not supported: GEMMs below)
                    var done = true
                    for t0 in stride(from: 0, to: tq, by: 16) where done {
                        let t1 = min(tq, t0 + 16)
                        done =
                            0
                            != rk_attention_forward_block(
                                out + qo + t0 * qld, qld, lse + (b * s.queryHeads + h) * tq + t0,
                                q + qo + t0 * qld, qld, k + kvo, v + kvo, kvld, mask, t1 - t0,
                                keyEnd(t1, s), t0 + tk - tq, d, scale, sp, qt)
                    }
                    if done { continue }
                }
                for t0 in stride(from: 0, to: tq, by: queryBlock) {  // row block [t0, t1) sees keys [0, kEnd)
                    let t1 = min(tq, t0 + queryBlock), kEnd = keyEnd(t1, s)
                    MatMul.gemm(
                        sp, ldc: kEnd, q + qo + t0 * qld, lda: qld, k + kvo, ldb: kvld, transB: true,
                        m: t1 - t0, n: kEnd, k: d, alpha: scale)
                    for t in t0..<t1 {
                        lse[(b * s.queryHeads + h) * tq + t] = rk_softmax_row(
                            sp + (t - t0) * kEnd, mask, min(kEnd, t + tk - tq + 1), kEnd)
                    }
                    MatMul.gemm(
                        out + qo + t0 * qld, ldc: qld, sp, lda: kEnd, v + kvo, ldb: kvld, m: t1 - t0, n: d, k: kEnd)
                }
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
        keyMask: UnsafePointer<Float>?, shape s: AttentionShape, queryBlock: Int = Attention.queryBlock
    ) {
        let tq = s.queryLength, tk = s.keyLength, d = s.headDim, qld = s.queryHeads * d, kvld = s.kvRowStride
        let scale = 1 / Float(d).squareRoot(), perGroup = s.queryHeads / s.kvHeads
        forEachTask(s.batch * s.kvHeads) { groups in
            // P and dS live in Tq×Tk scratch (row t at t·Tk) but only each row block's [0, kEnd) is computed:
            // row blocks for dQ, then key blocks [kEnd of the previous row block, kEnd) for dK and dV, whose
            // rows are exactly the row blocks from there down (rows above see none of those keys).
            let pp = Scratch.buffer("attention.scores", count: max(tq * tk, tk * 16)).pointer
            let gp = Scratch.buffer("attention.grads", count: max(tq * tk, tk * 16)).pointer
            let work = Scratch.buffer("attention.work", count: 4 * d * 16).pointer
            for group in groups {
                let b = group / s.kvHeads
                let mask = keyMask.map { $0 + b * s.maskBatchStride }
                for h in ((group % s.kvHeads) * perGroup)..<((group % s.kvHeads + 1) * perGroup) {
                    let qo = queryOffset(b, h, s), kvo = kvOffset(b, h, s)
                    if fused(s) {  // blocks of 16 query rows in the fused C kernel (0 = not supported: GEMMs below)
                        var done = true
                        for t0 in stride(from: 0, to: tq, by: 16) where done {
                            let t1 = min(tq, t0 + 16)
                            done =
                                0
                                != rk_attention_backward_block(
                                    dq + qo + t0 * qld, dk + kvo, dv + kvo, dOut + qo + t0 * qld, out + qo + t0 * qld,
                                    lse + (b * s.queryHeads + h) * tq + t0, q + qo + t0 * qld, qld, k + kvo, v + kvo,
                                    kvld, mask,
                                    t1 - t0, keyEnd(t1, s), t0 + tk - tq, d, scale, pp, gp, work)
                        }
                        if done { continue }
                    }
                    for t0 in stride(from: 0, to: tq, by: queryBlock) {
                        let t1 = min(tq, t0 + queryBlock), kEnd = keyEnd(t1, s)
                        MatMul.gemm(
                            pp + t0 * tk, ldc: tk, q + qo + t0 * qld, lda: qld, k + kvo, ldb: kvld, transB: true,
                            m: t1 - t0, n: kEnd, k: d, alpha: scale)
                        MatMul.gemm(
                            gp + t0 * tk, ldc: tk, dOut + qo + t0 * qld, lda: qld, v + kvo, ldb: kvld, transB: true,
                            m: t1 - t0, n: kEnd, k: d)
                        for t in t0..<t1 {
                            let p = pp + t * tk, g = gp + t * tk
                            rk_softmax_recompute_row(
                                p, mask, lse[(b * s.queryHeads + h) * tq + t], min(kEnd, t + tk - tq + 1), kEnd)
                            let o = qo + t * qld
                            let delta = Reductions.dot(dOut + o, out + o, count: d)
                            for i in 0..<kEnd { g[i] = p[i] * (g[i] - delta) }
                        }
                        MatMul.gemm(
                            dq + qo + t0 * qld, ldc: qld, gp + t0 * tk, lda: tk, k + kvo, ldb: kvld,
                            m: t1 - t0, n: d, k: kEnd, alpha: scale)
                    }
                    var kStart = 0
                    for t0 in stride(from: 0, to: tq, by: queryBlock) {
                        let kEnd = keyEnd(min(tq, t0 + queryBlock), s)
                        if kEnd > kStart {
                            MatMul.gemm(
                                dv + kvo + kStart * kvld, ldc: kvld, pp + t0 * tk + kStart, lda: tk, transA: true,
                                dOut + qo + t0 * qld, ldb: qld, m: kEnd - kStart, n: d, k: tq - t0, beta: 1)
                            MatMul.gemm(
                                dk + kvo + kStart * kvld, ldc: kvld, gp + t0 * tk + kStart, lda: tk, transA: true,
                                q + qo + t0 * qld, ldb: qld, m: kEnd - kStart, n: d, k: tq - t0, alpha: scale, beta: 1)
                        }
                        kStart = kEnd
                    }
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

    /// Whether the fused C kernel (`rk_attention_forward_block`) runs this shape: a vector path (AVX2 or AVX-512) and
    /// D a multiple of 16.
    static func fused(_ s: AttentionShape) -> Bool { KernelDispatch.path != .portable && s.headDim % 16 == 0 }

    /// Query rows per block: a block computes scores only for the keys its last row sees, which skips
    /// most of the masked upper triangle (at T = 256, 9/16 of the full square instead of all of it).
    public static let queryBlock = 32

    /// One past the last key that query rows before `t1` see (query t sits at position t + Tk − Tq).
    @inline(__always) static func keyEnd(_ t1: Int, _ s: AttentionShape) -> Int {
        min(s.keyLength, t1 + s.keyLength - s.queryLength)
    }

    @inline(__always) static func queryOffset(_ b: Int, _ h: Int, _ s: AttentionShape) -> Int {
        b * s.queryLength * s.queryHeads * s.headDim + h * s.headDim
    }

    @inline(__always) static func kvOffset(_ b: Int, _ h: Int, _ s: AttentionShape) -> Int {
        b * s.kvBatchStride + (h / (s.queryHeads / s.kvHeads)) * s.kvHeadStride
    }
}

extension Attention {
    /// Decoding path for a few query rows per sequence (Tq ≤ 4, keys from a KV cache): one C kernel call
    /// per query row and KV head, covering the query heads that share it (dot products, softmax, Σ p·v with
    /// q and the outputs in registers; each cached row read once per step), parallel over (batch, KV head)
    /// pairs, instead of many tiny GEMMs. Same semantics as `forward` (causal offset, additive key mask,
    /// zero rows when fully masked). No lse output.
    public static func forwardDecode(
        out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        keyMask: UnsafePointer<Float>?, shape s: AttentionShape
    ) {
        let tq = s.queryLength, tk = s.keyLength, d = s.headDim, g = s.queryHeads / s.kvHeads
        let pairs = s.batch * s.kvHeads
        let scale = 1 / Float(d).squareRoot()
        let kvld = s.kvRowStride, qld = s.queryHeads * d
        let scratch = Scratch.buffer("attention.decode", count: ThreadPool.shared.threadCount * g * tk)
        // ~4 ns per key and head at d = 64 (measured, both passes, cache-resident); the grain is ~0.5 µs.
        let chunks = min(pairs, ThreadPool.shared.threadCount)
        parallelFor(chunks, cost: pairs * g * tq * tk * d / 8192) { parts in
            for part in parts {
                let scores = scratch.pointer + part * g * tk
                for pair in (pairs * part / chunks)..<(pairs * (part + 1) / chunks) {
                    let (b, kvh) = (pair / s.kvHeads, pair % s.kvHeads)
                    let kb = k + kvOffset(b, kvh * g, s), vb = v + kvOffset(b, kvh * g, s)
                    let mask = keyMask.map { $0 + b * s.maskBatchStride }
                    for t in 0..<tq {
                        let qo = queryOffset(b, kvh * g, s) + t * qld
                        rk_attend_group(
                            out + qo, q + qo, g, kb, vb, kvld, mask, min(tk, t + tk - tq + 1), d, scale, scores)
                    }
                }
            }
        }
    }
}

// Every matrix product goes through CBLAS sgemm with transposes expressed as flags (no transposed
// copies; measured at no cost in swift-compute.md §4). Two threading modes (see `MatMul.Mode`): our
// pool splits the GEMM over single-threaded OpenBLAS calls (default), or OpenBLAS runs its own threads
// while our pool is parked so the two never spin against each other.

import Foundation
import _CBLAS
import _CKernels

public enum MatMul {
    /// How GEMMs use the cores: `.blasThreads` lets OpenBLAS run its own threads (our pool parks);
    /// `.poolSplit` runs single-threaded OpenBLAS on each of our pool's threads over a column (or row)
    /// block, so no second thread pool spins next to ours (the default: measured equal or faster,
    /// up to 1.5× on LoRA steps full of small GEMMs). Chosen once by `configureThreads`
    /// (`RLHF_GEMM=blas|split` overrides). Results are deterministic for a given thread count.
    public static let mode: Mode = {
        rk_blas_select_core()
        let m = ProcessInfo.processInfo.environment["RLHF_GEMM"].flatMap(Mode.init(rawValue:)) ?? .poolSplit
        openblas_set_num_threads(Int32(m == .poolSplit ? 1 : ThreadPool.shared.threadCount))
        return m
    }()
    public enum Mode: String, Sendable { case blasThreads = "blas", poolSplit = "split" }

    /// Applies the threading mode now (it is otherwise applied on the first GEMM).
    public static func configureThreads() { _ = mode }

    /// The OpenBLAS core re-selected for the kernel path (`rk_blas_select_core`: a release older than the CPU
    /// took it for a narrower core, or RLHF_CPU capped the path below OpenBLAS's choice), or a core forced with
    /// OPENBLAS_CORETYPE whose width differs from the path's; nil when OpenBLAS's own choice matches the path.
    public static var blasCoreNote: String? {
        _ = mode
        let note = String(cString: rk_blas_core_note())
        return note.isEmpty ? nil : note
    }

    /// C[M,N] = alpha · op(A) · op(B) + beta · C, row-major.
    /// op(A) is [M,K]: A is stored [M,K] (lda ≥ K) or, with transA, [K,M] (lda ≥ M). Same for B.
    @inline(__always)
    public static func gemm(
        _ c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
        _ a: UnsafePointer<Float>, lda: Int? = nil, transA: Bool = false,
        _ b: UnsafePointer<Float>, ldb: Int? = nil, transB: Bool = false,
        m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            if beta == 0 { for r in 0..<m { (c + r &* (ldc ?? n)).update(repeating: 0, count: n) } }
            return
        }
        let lda = lda ?? (transA ? m : k), ldb = ldb ?? (transB ? k : n), ldc = ldc ?? n
        if mode == .poolSplit && ThreadPool.shared.threadCount > 1 && 2 * m * n * k >= 1 << 21 {
            // Split the larger of M and N into one block per thread; each block is an independent sgemm. The
            // blocks are the same when the pool runs them serially (it is busy with another caller, or this is
            // a nested call), so the result never depends on how many threads were free.
            let splitN = n >= m, count = splitN ? n : m, blocks = min(ThreadPool.shared.threadCount, max(1, count / 16))
            parallelFor(blocks, cost: Int.max / 2) { range in
                for block in range {
                    let r = (count * block / blocks)..<(count * (block + 1) / blocks)
                    if splitN {
                        cblas_sgemm(
                            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                            Int32(m), Int32(r.count), Int32(k), alpha, a, Int32(lda),
                            b + (transB ? r.lowerBound * ldb : r.lowerBound), Int32(ldb), beta, c + r.lowerBound,
                            Int32(ldc))
                    } else {
                        cblas_sgemm(
                            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                            Int32(r.count), Int32(n), Int32(k), alpha, a + (transA ? r.lowerBound : r.lowerBound * lda),
                            Int32(lda), b, Int32(ldb), beta, c + r.lowerBound * ldc, Int32(ldc))
                    }
                }
            }
            return
        }
        if mode == .blasThreads { ThreadPool.shared.park() }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// A fully-connected layer without bias in the `nn.Linear` layout: W is [O, I], y = x Wᵀ.
/// N = rows (tokens), I = input features, O = output features.
public enum Linear {
    /// At or below this many rows the product runs on our few-row kernels (through `WeightMatrix.forwardGroup`)
    /// instead of sgemm, whose packing dominates at small M (measured: `sgemm_incopy` as costly as the kernel
    /// at M = 16).
    public static let fewRowsLimit = 16
    /// From this many rows up to `fewRowsLimit`, the transposed kernel (16-lane input columns, no
    /// horizontal sums) does fewer operations per weight than the dot-product one (≈ M/16 × 1.2).
    public static let transposedFewRows = 12

    /// y[N,O] = x[N,I] · Wᵀ (+ y when accumulate).
    public static func forward(
        out y: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
        rows: Int, inFeatures: Int, outFeatures: Int, accumulate: Bool = false
    ) {
        if rows == 0 || outFeatures == 0 { return }
        if rows <= fewRowsLimit {  // decoding: the few-row kernels, via the grouped product's pass of claimed chunks
            WeightMatrix.forwardGroup(
                [.init(weight: .dense(w), out: y, outFeatures: outFeatures, accumulate: accumulate)],
                input: x, rows: rows, inFeatures: inFeatures)
            return
        }
        MatMul.gemm(y, x, w, transB: true, m: rows, n: outFeatures, k: inFeatures, beta: accumulate ? 1 : 0)
    }

    /// The transposed few-row kernels' common part (fp32, quantised, panel and bf16 weights): packs x
    /// [rows ≤ 16, I] as 16-lane columns into this thread's scratch (as bf16 pairs when `bf16Pairs`), then
    /// runs `body(packed, t0, t1)` over `tiles` register tiles. `claimed`: the threads claim chunks of ~1/12
    /// of a share (compute-bound tiles: a thread the host slows down hands its remaining chunks over);
    /// otherwise each thread takes one contiguous range, which kernels that prefetch several tiles ahead
    /// within their range need (the bf16 tile: decode step 21 → 26.5 ms when claimed in chunks).
    static func forEachTransposedTile(
        input x: UnsafePointer<Float>, rows: Int, inFeatures: Int, tiles: Int,
        bf16Pairs: Bool = false, claimed: Bool = false,
        _ body: (UnsafePointer<Float>, Int, Int) -> Void
    ) {
        let xt = Scratch.buffer("linear.xt", count: inFeatures * 16)
        rk_pack_rows_t16(xt.pointer, x, inFeatures, rows, inFeatures)
        if bf16Pairs { rk_bf16_pairs_t16(xt.pointer, inFeatures) }
        let packed = UnsafePointer(xt.pointer)
        if claimed {
            parallelForClaimed(tiles, chunk: max(1, tiles / (12 * ThreadPool.shared.threadCount))) { r in
                body(packed, r.lowerBound, r.upperBound)
            }
        } else {
            parallelFor(tiles, grain: max(1, 4096 / (Int(RK_T16_NR) * inFeatures))) { r in
                body(packed, r.lowerBound, r.upperBound)
            }
        }
    }

    /// forward: y = x Wᵀ  ⇒  dx (=|+=) dy W,  dW += dyᵀ x.
    /// `dInput` is written (or accumulated when `accumulateInput`); `dWeight` is always accumulated.
    public static func backward(
        dInput dx: UnsafeMutablePointer<Float>?, dWeight dw: UnsafeMutablePointer<Float>?,
        dOut dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
        rows: Int, inFeatures: Int, outFeatures: Int, accumulateInput: Bool = false
    ) {
        if let dx {
            MatMul.gemm(dx, dy, w, m: rows, n: inFeatures, k: outFeatures, beta: accumulateInput ? 1 : 0)
        }
        if let dw {
            MatMul.gemm(dw, dy, transA: true, x, m: outFeatures, n: inFeatures, k: rows, beta: 1)
        }
    }
}

// Products with a thin factor (rank r ≪ features), as in LoRA. u = x Aᵀ gets a row-parallel kernel
// (172 against 143 GFLOP/s for sgemm at 1024 × 576, r = 16, `Benchmarks lora-gemm`); expanding u back
// goes to sgemm except for decoding's few rows.
// N = rows (tokens), D = features, R = rank.

import _CKernels

public enum LowRank {
    /// u[N, R] = x[N, D] · Aᵀ with A [R, D] (the few-row NT kernel with the thin factor as weights).
    public static func project(
        out u: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, factor a: UnsafePointer<Float>,
        rows n: Int, features d: Int, rank r: Int
    ) {
        parallelFor(n, grain: max(1, 4096 / max(d * r, 1)) * 4) { rows in
            rk_gemm_few_rows_nt(u + rows.lowerBound * r, r, x + rows.lowerBound * d, d, a, rows.count, 0, r, d, 0)
        }
    }

    /// y[N, D] += α · u[N, R] · W, with W stored [R, D] or, when `transposed`, as Wᵀ [D, R] (LoRA's B).
    /// Few rows (decoding) use the row-parallel rank-update kernel; many rows an sgemm, which runs this
    /// shape ~1.7× faster (171 against 101 GFLOP/s at 1024 × 576, r = 16, `Benchmarks lora-gemm`).
    /// With `accumulate` false, y is overwritten instead.
    public static func expand(
        into y: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
        transposed: Bool = false, rows n: Int, features d: Int, rank r: Int, alpha: Float,
        accumulate: Bool = true
    ) {
        if n > Linear.fewRowsLimit {
            MatMul.gemm(y, u, w, transB: transposed, m: n, n: d, k: r, alpha: alpha, beta: accumulate ? 1 : 0)
            return
        }
        if !accumulate { y.update(repeating: 0, count: n * d) }
        var rows = UnsafePointer(w)
        if transposed {
            let wt = Scratch.buffer("lowrank.wt", count: r * d)
            transpose(w, into: wt.pointer, rows: d, rank: r)
            rows = UnsafePointer(wt.pointer)
        }
        parallelFor(n, grain: max(1, 4096 / max(d * r, 1)) * 4) { range in
            rk_rank_update_rows(y, d, u, r, rows, r, range.lowerBound, range.upperBound, d, alpha)
        }
    }

    /// Bᵀ [R, D] from B [D, R].
    public static func transpose(
        _ b: UnsafePointer<Float>, into bt: UnsafeMutablePointer<Float>, rows d: Int, rank r: Int
    ) {
        for i in 0..<d { for j in 0..<r { bt[j * d + i] = b[i * r + j] } }
    }
}

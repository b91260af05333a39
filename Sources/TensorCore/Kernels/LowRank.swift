// Products with a thin factor (rank r ≪ features), as in LoRA: OpenBLAS runs these skinny shapes at
// ~30 GFLOP/s (measured with `Benchmarks lora-gemm`), so they get their own row-parallel kernels.
// N = rows (tokens), D = features, R = rank.

import _CKernels

public enum LowRank {
    /// u[N, R] = x[N, D] · Aᵀ with A [R, D] (the few-row NT kernel with the thin factor as weights).
    public static func project(out u: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, factor a: UnsafePointer<Float>,
                               rows n: Int, features d: Int, rank r: Int) {
        parallelFor(n, grain: max(1, 4096 / max(d * r, 1)) * 4) { rows in
            rk_gemm_few_rows_nt(u + rows.lowerBound * r, r, x + rows.lowerBound * d, d, a, rows.count, 0, r, d, 0)
        }
    }

    /// y[N, D] += α · u[N, R] · W with W [R, D] (contiguous rows).
    public static func expand(into y: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                              rows n: Int, features d: Int, rank r: Int, alpha: Float) {
        parallelFor(n, grain: max(1, 4096 / max(d * r, 1)) * 4) { rows in
            rk_rank_update_rows(y, d, u, r, w, r, rows.lowerBound, rows.upperBound, d, alpha)
        }
    }

    /// Bᵀ [R, D] from B [D, R].
    public static func transpose(_ b: UnsafePointer<Float>, into bt: UnsafeMutablePointer<Float>, rows d: Int, rank r: Int) {
        for i in 0..<d { for j in 0..<r { bt[j * d + i] = b[i * r + j] } }
    }
}

// RMSNorm over the last axis (Zhang & Sennrich 2019, Eq. 4). N = rows, C = channels.
//   y = x · rstd · w,   rstd = 1 / √(mean(x²) + ε)
// The mean of squares is accumulated in Float SIMD lanes then summed in Double, close to PyTorch's fp32 path.

public enum RMSNorm {
    /// Writes out[N,C] and rstd[N] (saved for backward).
    public static func forward(
        out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>?,
        input x: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
        rows: Int, channels c: Int, epsilon: Float
    ) {
        parallelFor(rows, grain: 4) { r in
            for row in r {
                let xr = x + row &* c, o = out + row &* c
                let ms = Reductions.dot(xr, xr, count: c) / Float(c)
                let s = 1 / (ms + epsilon).squareRoot()
                rstd?[row] = s
                for i in 0..<c { o[i] = (xr[i] * s) * w[i] }
            }
        }
    }

    /// forward: y = x̂ ⊙ w, x̂ = x·rstd  ⇒  dw += Σ_rows dy ⊙ x̂,
    /// dx = rstd · (g − x̂ · mean(g ⊙ x̂)) with g = dy ⊙ w. Writes dx (or adds when `accumulateInput`).
    public static func backward(
        dInput dx: UnsafeMutablePointer<Float>, dWeight dw: UnsafeMutablePointer<Float>?,
        dOut dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
        rstd: UnsafePointer<Float>, rows: Int, channels c: Int, accumulateInput: Bool = false
    ) {
        let threads = ThreadPool.shared.threadCount
        let partial = FloatBuffer(count: dw == nil ? 0 : threads &* c)
        let pp = partial.pointer
        let chunks = rows >= 8 ? threads : 1
        parallelFor(chunks, cost: rows / 2) { part in
            for t in part {
                let lo = rows &* t / chunks, hi = rows &* (t &+ 1) / chunks
                let dwp = pp + t &* c
                for row in lo..<hi {
                    let xr = x + row &* c, dyr = dy + row &* c, dxr = dx + row &* c
                    let s = rstd[row]
                    let mean = Reductions.dot(dyr, w, xr, count: c) * s / Float(c)
                    if accumulateInput {
                        for i in 0..<c { dxr[i] += s * (dyr[i] * w[i] - xr[i] * s * mean) }
                    } else {
                        for i in 0..<c { dxr[i] = s * (dyr[i] * w[i] - xr[i] * s * mean) }
                    }
                    if dw != nil { for i in 0..<c { dwp[i] += dyr[i] * (xr[i] * s) } }
                }
            }
        }
        if let dw {
            for t in 0..<chunks { Elementwise.axpy(dw, 1, pp + t &* c, count: c) }
        }
    }
}

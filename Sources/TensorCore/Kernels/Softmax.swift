// Row-wise softmax and log-softmax over the last axis. R = rows, C = columns.
// softmax(x)_i = e^{x_i − m} / Σ_j e^{x_j − m},  log-softmax = x − logsumexp(x).

import _CKernels

public enum Softmax {
    /// out[R,C] = softmax(input) row-wise (out may alias input).
    public static func forward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows: Int, columns c: Int)
    {
        parallelFor(rows, grain: max(1, 4096 / max(c, 1))) { r in
            for row in r {
                let o = out + row &* c
                if UnsafePointer(o) != input + row &* c { o.update(from: input + row &* c, count: c) }
                _ = rk_softmax_row(o, nil, c, c)
            }
        }
    }

    /// forward: y = softmax(x)  ⇒  dx = y ⊙ (dy − Σ dy⊙y). Writes dInput (may alias dOut).
    public static func backward(
        dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, out y: UnsafePointer<Float>, rows: Int,
        columns c: Int
    ) {
        parallelFor(rows, grain: max(1, 4096 / max(c, 1))) { r in
            for row in r {
                let yr = y + row &* c, dy = dOut + row &* c, dx = dInput + row &* c
                let s = Reductions.dot(dy, yr, count: c)
                for i in 0..<c { dx[i] = yr[i] * (dy[i] - s) }
            }
        }
    }
}

public enum LogSoftmax {
    /// out[R,C] = x − logsumexp(x) row-wise (out may alias input).
    public static func forward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows: Int, columns c: Int)
    {
        parallelFor(rows, grain: max(1, 4096 / max(c, 1))) { r in
            for row in r {
                let x = input + row &* c, o = out + row &* c
                let lse = rk_logsumexp_row(x, c)
                for i in 0..<c { o[i] = x[i] - lse }
            }
        }
    }

    /// forward: y = x − lse(x)  ⇒  dx = dy − e^{y} Σ dy. Writes dInput.
    public static func backward(
        dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, out y: UnsafePointer<Float>, rows: Int,
        columns c: Int
    ) {
        parallelFor(rows, grain: max(1, 4096 / max(c, 1))) { r in
            for row in r {
                let yr = y + row &* c, dy = dOut + row &* c, dx = dInput + row &* c
                let s = Reductions.sum(dy, count: c)
                rk_exp(dx, yr, c)
                for i in 0..<c { dx[i] = dy[i] - dx[i] * s }
            }
        }
    }

    /// logsumexp of each row.
    public static func logSumExp(
        out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows: Int, columns c: Int
    ) {
        parallelFor(rows, grain: max(1, 4096 / max(c, 1))) { r in
            for row in r { out[row] = rk_logsumexp_row(input + row &* c, c) }
        }
    }
}

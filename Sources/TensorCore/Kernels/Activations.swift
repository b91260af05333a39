// SiLU and SwiGLU (Shazeer 2020, "GLU Variants Improve Transformer", Eq. 6: FFN_SwiGLU = (Swish(xW) ⊗ xV) W2).
// The exp-bound inner loops are the AVX-512 C kernels of _CKernels; this file splits them across threads.

import _CKernels

public enum SwiGLU {
    /// out = silu(gate) ⊙ up. All [N] flat.
    public static func forward(
        out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count n: Int
    ) {
        parallelFor(n, grain: 1024) { r in
            rk_swiglu_forward(out + r.lowerBound, gate + r.lowerBound, up + r.lowerBound, r.count)
        }
    }

    /// forward: y = g·σ(g)·u  ⇒  dg = dy·u·σ(g)(1 + g(1−σ(g))),  du = dy·g·σ(g). Writes dGate and dUp.
    public static func backward(
        dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
        gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count n: Int
    ) {
        parallelFor(n, grain: 1024) { r in
            let o = r.lowerBound
            rk_swiglu_backward(dGate + o, dUp + o, dOut + o, gate + o, up + o, r.count)
        }
    }
}

public enum SiLU {
    /// y = x·σ(x)
    public static func forward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count n: Int) {
        parallelFor(n, grain: 1024) { r in rk_silu_forward(out + r.lowerBound, input + r.lowerBound, r.count) }
    }

    /// forward: y = x·σ(x)  ⇒  dx = dy·σ(x)(1 + x(1−σ(x))). Writes dInput.
    public static func backward(
        dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, count n: Int
    ) {
        parallelFor(n, grain: 1024) { r in
            rk_silu_backward(dInput + r.lowerBound, dOut + r.lowerBound, input + r.lowerBound, r.count)
        }
    }
}

// The seven linear projections of a layer, with the active LoRA adapter (if any) applied:
//   y = x W₀ᵀ + b + s · (drop(x) Aᵀ) Bᵀ          (Hu et al. 2021, Eq. 3)
// Training saves u = drop(x) Aᵀ [N, r] per projection; dropout masks are regenerated in backward
// from a per-(layer, projection) seed instead of being stored.

import TensorCore

/// Per-forward LoRA state kept for backward.
final class LoRAActivations: @unchecked Sendable {
    var u: [[FloatBuffer?]]  // [layer][kind] = drop(x) Aᵀ, [N, r]
    var seed: UInt64 = 0
    var isTraining = false
    init(layers: Int) { u = Array(repeating: Array(repeating: nil, count: ProjectionKind.allCases.count), count: layers) }
}

extension LlamaModel {
    /// y[N, out] = x Wᵀ (+ b) (+ LoRA). `lora` holds training state (nil at inference).
    func project(_ kind: ProjectionKind, layer l: Int, out y: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>,
                 rows n: Int, accumulate: Bool = false, lora: LoRAActivations? = nil) {
        let w = layerWeights[l], (inF, outF) = kind.shape(config)
        w.weight(kind).forward(out: y, input: x, rows: n, inFeatures: inF, outFeatures: outF, accumulate: accumulate)
        if let b = w.bias(kind) { for r in 0..<n { Elementwise.add(y + r * outF, y + r * outF, b.value, count: outF) } }
        guard let adapter = activeLoRA, let m = adapter.modules[l][kind.rawValue] else { return }
        let rank = adapter.config.rank
        let u = lora.map { state -> FloatBuffer in
            if state.u[l][kind.rawValue]?.count != n * rank { state.u[l][kind.rawValue] = FloatBuffer(count: n * rank) }
            return state.u[l][kind.rawValue]!
        } ?? FloatBuffer(count: n * rank)
        if let lora, lora.isTraining, adapter.config.dropout > 0 {
            let dropped = Scratch.buffer("lora.dropped", count: n * inF)
            applyDropout(dropped.pointer, x, count: n * inF, p: adapter.config.dropout, seed: dropoutSeed(lora.seed, l, kind))
            LowRank.project(out: u.pointer, input: dropped.pointer, factor: m.a, rows: n, features: inF, rank: rank)
        } else {
            LowRank.project(out: u.pointer, input: x, factor: m.a, rows: n, features: inF, rank: rank)
        }
        let bt = Scratch.buffer("lora.bt", count: rank * outF)
        LowRank.transpose(m.b, into: bt.pointer, rows: outF, rank: rank)
        LowRank.expand(into: y, u.pointer, bt.pointer, rows: n, features: outF, rank: rank, alpha: adapter.config.scale)
    }

    /// forward: y = x W₀ᵀ + b + s·u Bᵀ, u = drop(x) Aᵀ  ⇒  dx (=|+=) dy W₀ + drop'(s·dy B A),
    /// dW₀ += dyᵀ x (when trainable), db += Σ dy, dB += s·dyᵀ u, dA += (s·dy B)ᵀ drop(x).
    func projectBackward(_ kind: ProjectionKind, layer l: Int, dInput dx: UnsafeMutablePointer<Float>, dOut dy: UnsafePointer<Float>,
                         input x: UnsafePointer<Float>, rows n: Int, accumulate: Bool, lora: LoRAActivations?) {
        let w = layerWeights[l], (inF, outF) = kind.shape(config)
        w.weight(kind).backward(dInput: dx, dWeight: w.gradient(kind), dOut: dy, input: x, rows: n,
                                inFeatures: inF, outFeatures: outF, accumulateInput: accumulate)
        if let b = w.bias(kind), let db = b.grad { for r in 0..<n { Elementwise.axpy(db, 1, dy + r * outF, count: outF) } }
        guard let adapter = activeLoRA, let m = adapter.modules[l][kind.rawValue], let lora, let u = lora.u[l][kind.rawValue] else { return }
        let rank = adapter.config.rank, s = adapter.config.scale
        if let bGrad = m.bGrad {  // dB += s · dyᵀ u, computed as dBᵀ = s · uᵀ dy (the fast TN shape)
            let dbt = Scratch.buffer("lora.dbt", count: rank * outF)
            MatMul.gemm(dbt.pointer, u.pointer, transA: true, dy, m: rank, n: outF, k: n, alpha: s)
            for i in 0..<outF { for j in 0..<rank { bGrad[i * rank + j] += dbt.pointer[j * outF + i] } }
        }
        let bt = Scratch.buffer("lora.bt", count: rank * outF)  // du = s · dy B = s · dy (Bᵀ)ᵀ
        LowRank.transpose(m.b, into: bt.pointer, rows: outF, rank: rank)
        let du = Scratch.buffer("lora.du", count: n * rank)
        LowRank.project(out: du.pointer, input: dy, factor: bt.pointer, rows: n, features: outF, rank: rank)
        Elementwise.scale(du.pointer, by: s, count: n * rank)
        let useDropout = lora.isTraining && adapter.config.dropout > 0
        var input = x
        let dropped = useDropout ? Scratch.buffer("lora.dropped", count: n * inF) : nil
        if let dropped {
            applyDropout(dropped.pointer, x, count: n * inF, p: adapter.config.dropout, seed: dropoutSeed(lora.seed, l, kind))
            input = UnsafePointer(dropped.pointer)
        }
        if let aGrad = m.aGrad {  // dA += duᵀ drop(x)
            MatMul.gemm(aGrad, du.pointer, transA: true, input, m: rank, n: inF, k: n, beta: 1)
        }
        if let dropped {  // dx += mask/(1−p) ⊙ (du A): reuse `dropped` for du A, then mask it
            dropped.pointer.update(repeating: 0, count: n * inF)
            LowRank.expand(into: dropped.pointer, du.pointer, m.a, rows: n, features: inF, rank: rank, alpha: 1)
            applyDropout(dropped.pointer, dropped.pointer, count: n * inF, p: adapter.config.dropout, seed: dropoutSeed(lora.seed, l, kind))
            Elementwise.axpy(dx, 1, dropped.pointer, count: n * inF)
        } else {
            LowRank.expand(into: dx, du.pointer, m.a, rows: n, features: inF, rank: rank, alpha: 1)
        }
    }

    func dropoutSeed(_ seed: UInt64, _ layer: Int, _ kind: ProjectionKind) -> UInt64 {
        seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(layer * 8 + kind.rawValue + 1) &* 0xD1B5_4A32_D192_ED03
    }

    /// y = x ⊙ mask / (1 − p), mask ~ Bernoulli(1 − p) from `seed` (same seed ⇒ same mask).
    func applyDropout(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, p: Float, seed: UInt64) {
        var rng = RNG(seed: seed)
        let keep = 1 / (1 - p)
        for i in 0..<count { y[i] = rng.uniform() < p ? 0 : x[i] * keep }
    }
}

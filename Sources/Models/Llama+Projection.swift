// The seven linear projections of a layer, with the given LoRA adapter (if any) applied:
//   y = x W₀ᵀ + b + s · (drop(x) Aᵀ) Bᵀ          (Hu et al. 2021, Eq. 3)
// Training saves u = drop(x) Aᵀ [N, r] per projection; dropout masks are regenerated in backward
// from a per-(layer, projection) seed instead of being stored.

import TensorCore

/// Per-forward LoRA state kept for backward.
final class LoRAActivations: @unchecked Sendable {
    var u: [[FloatBuffer?]]  // [layer][kind] = drop(x) Aᵀ, [N, r]
    var seed: UInt64 = 0
    var isTraining = false
    init(layers: Int) {
        u = Array(repeating: Array(repeating: nil, count: ProjectionKind.allCases.count), count: layers)
    }
}

extension LlamaModel {
    /// y[N, out] = x Wᵀ (+ b) (+ s·B A x of `adapter`). `lora` holds training state (nil at inference).
    /// `baseDone`: y already holds x W₀ᵀ (a grouped product); only the bias and LoRA terms are added.
    func project(
        _ kind: ProjectionKind, layer l: Int, out y: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>,
        rows n: Int, accumulate: Bool = false, adapter: LoRAAdapter?, lora: LoRAActivations? = nil,
        baseDone: Bool = false
    ) {
        let w = layerWeights[l], (inF, outF) = kind.shape(config)
        let module = adapter?.modules[l][kind.rawValue]
        // Many rows into a fresh output: the LoRA term is written first and the base GEMM accumulates onto
        // it, which saves the read-modify-write pass over y that adding it afterwards costs.
        let loraFirst = module != nil && !accumulate && !baseDone && n > Linear.fewRowsLimit
        func addLoRA(overwrite: Bool) {
            guard let adapter, let m = module else { return }
            let rank = adapter.config.rank
            let u =
                lora.map { state -> FloatBuffer in
                    if state.u[l][kind.rawValue]?.count != n * rank {
                        state.u[l][kind.rawValue] = FloatBuffer(count: n * rank)
                    }
                    return state.u[l][kind.rawValue]!
                } ?? Scratch.buffer("lora.u", count: n * rank)  // inference: nothing is kept for backward
            if let lora, lora.isTraining, adapter.config.dropout > 0 {
                let dropped = Scratch.buffer("lora.dropped", count: n * inF)
                applyDropout(
                    dropped.pointer, x, count: n * inF, p: adapter.config.dropout, seed: dropoutSeed(lora.seed, l, kind)
                )
                LowRank.project(out: u.pointer, input: dropped.pointer, factor: m.a, rows: n, features: inF, rank: rank)
            } else {
                LowRank.project(out: u.pointer, input: x, factor: m.a, rows: n, features: inF, rank: rank)
            }
            LowRank.expand(
                into: y, u.pointer, m.b, transposed: true, rows: n, features: outF, rank: rank,
                alpha: adapter.config.scale, accumulate: !overwrite)
        }
        if loraFirst { addLoRA(overwrite: true) }
        if !baseDone {
            w.weight(kind).forward(
                out: y, input: x, rows: n, inFeatures: inF, outFeatures: outF, accumulate: accumulate || loraFirst)
        }
        if let b = w.bias(kind) { for r in 0..<n { Elementwise.add(y + r * outF, y + r * outF, b.value, count: outF) } }
        if !loraFirst { addLoRA(overwrite: false) }
    }

    /// `project` for several kinds that read the same input (q, k, v; gate, up), writing fresh outputs: the
    /// base products run as one group (`WeightMatrix.forwardGroup`: at decode sizes one packing of the input
    /// and one parallel pass), then each output gets its bias and LoRA term as `project` adds them.
    /// `prefetch`: memory for the grouped products to bring into cache as they compute.
    func project(
        _ kinds: [ProjectionKind], layer l: Int, outs: [UnsafeMutablePointer<Float>], input x: UnsafePointer<Float>,
        rows n: Int, adapter: LoRAAdapter?, lora: LoRAActivations? = nil, prefetch: PrefetchList? = nil
    ) {
        guard n <= Linear.fewRowsLimit else {  // many rows: each product is long enough on its own
            for (kind, y) in zip(kinds, outs) {
                project(kind, layer: l, out: y, input: x, rows: n, adapter: adapter, lora: lora)
            }
            return
        }
        let w = layerWeights[l]
        WeightMatrix.forwardGroup(
            zip(kinds, outs).map { kind, y in
                WeightMatrix.GroupProduct(weight: w.weight(kind), out: y, outFeatures: kind.shape(config).outFeatures)
            }, input: x, rows: n, inFeatures: kinds[0].shape(config).inFeatures, prefetch: prefetch)
        for (kind, y) in zip(kinds, outs) {
            project(kind, layer: l, out: y, input: x, rows: n, adapter: adapter, lora: lora, baseDone: true)
        }
    }

    /// forward: y = x W₀ᵀ + b + s·u Bᵀ, u = drop(x) Aᵀ  ⇒  dx (=|+=) dy W₀ + drop'(s·dy B A),
    /// dW₀ += dyᵀ x (when trainable), db += Σ dy, dB += s·dyᵀ u, dA += (s·dy B)ᵀ drop(x).
    func projectBackward(
        _ kind: ProjectionKind, layer l: Int, dInput dx: UnsafeMutablePointer<Float>, dOut dy: UnsafePointer<Float>,
        input x: UnsafePointer<Float>, rows n: Int, accumulate: Bool, adapter: LoRAAdapter?,
        lora: LoRAActivations?
    ) {
        let w = layerWeights[l], (inF, outF) = kind.shape(config)
        w.weight(kind).backward(
            dInput: dx, dWeight: w.gradient(kind), dOut: dy, input: x, rows: n,
            inFeatures: inF, outFeatures: outF, accumulateInput: accumulate)
        if let b = w.bias(kind), let db = b.grad {
            for r in 0..<n { Elementwise.axpy(db, 1, dy + r * outF, count: outF) }
        }
        guard let adapter, let m = adapter.modules[l][kind.rawValue], let lora, let u = lora.u[l][kind.rawValue] else {
            return
        }
        let rank = adapter.config.rank, s = adapter.config.scale
        if let bGrad = m.bGrad {  // dB += s · dyᵀ u
            MatMul.gemm(bGrad, dy, transA: true, u.pointer, m: outF, n: rank, k: n, alpha: s, beta: 1)
        }
        let du = Scratch.buffer("lora.du", count: n * rank)  // du = s · dy B
        MatMul.gemm(du.pointer, dy, m.b, m: n, n: rank, k: outF, alpha: s)
        let useDropout = lora.isTraining && adapter.config.dropout > 0
        var input = x
        let dropped = useDropout ? Scratch.buffer("lora.dropped", count: n * inF) : nil
        if let dropped {
            applyDropout(
                dropped.pointer, x, count: n * inF, p: adapter.config.dropout, seed: dropoutSeed(lora.seed, l, kind))
            input = UnsafePointer(dropped.pointer)
        }
        if let aGrad = m.aGrad {  // dA += duᵀ drop(x)
            MatMul.gemm(aGrad, du.pointer, transA: true, input, m: rank, n: inF, k: n, beta: 1)
        }
        if let dropped {  // dx += mask/(1−p) ⊙ (du A): reuse `dropped` for du A, then mask it
            dropped.pointer.update(repeating: 0, count: n * inF)
            LowRank.expand(into: dropped.pointer, du.pointer, m.a, rows: n, features: inF, rank: rank, alpha: 1)
            applyDropout(
                dropped.pointer, dropped.pointer, count: n * inF, p: adapter.config.dropout,
                seed: dropoutSeed(lora.seed, l, kind))
            Elementwise.axpy(dx, 1, dropped.pointer, count: n * inF)
        } else {
            LowRank.expand(into: dx, du.pointer, m.a, rows: n, features: inF, rank: rank, alpha: 1)
        }
    }

    func dropoutSeed(_ seed: UInt64, _ layer: Int, _ kind: ProjectionKind) -> UInt64 {
        seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(layer * 8 + kind.rawValue + 1) &* 0xD1B5_4A32_D192_ED03
    }

    /// y = x ⊙ mask / (1 − p), mask ~ Bernoulli(1 − p) from `seed` (same seed ⇒ same mask, whatever the
    /// thread count). Each 4096-element block draws from its own SplitMix64 stream, 16 random bits per
    /// element (p is resolved to 1/65536). y may alias x.
    func applyDropout(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, p: Float, seed: UInt64) {
        let threshold = UInt64((Double(p) * 65536).rounded()), keep = 1 / (1 - p)
        let block = 4096
        parallelFor((count + block - 1) / block, grain: 1) { blocks in
            for b in blocks {
                var state = seed ^ (UInt64(b) &* 0xD6E8_FEB8_6659_FD93)
                var i = b * block
                let end = min(count, i + block)
                while i < end {
                    state &+= 0x9E37_79B9_7F4A_7C15  // SplitMix64
                    var z = state
                    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                    z ^= z >> 31
                    for lane in 0..<4 where i < end {
                        y[i] = (z >> UInt64(16 * lane)) & 0xFFFF < threshold ? 0 : x[i] * keep
                        i &+= 1
                    }
                }
            }
        }
    }
}

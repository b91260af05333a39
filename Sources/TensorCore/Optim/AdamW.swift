// AdamW with decoupled weight decay (Loshchilov & Hutter 2019, Algorithm 2), in PyTorch's form:
//   θ ← θ − lr·λ·θ;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
//   θ ← θ − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε)
// One flat parallel loop over a ParameterStore (moments live in two buffers of the same layout).

import Foundation

/// AdamW's hyper-parameters; the defaults (PyTorch's) are written once, in the initializer.
public struct AdamWConfig: Codable, Sendable, Equatable {
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

}

public final class AdamW: @unchecked Sendable {
    public let config: AdamWConfig
    public let store: ParameterStore
    public let m: FloatBuffer
    public let v: FloatBuffer
    /// Steps taken so far (t in the bias corrections).
    public var step: Int = 0
    /// Parameters whose name satisfies this get no weight decay (by default none are excluded).
    let decays: [Bool]

    public init(
        store: ParameterStore, config: AdamWConfig = AdamWConfig(), decayFilter: (String) -> Bool = { _ in true }
    ) {
        precondition(store.isTrainable, "AdamW needs a trainable parameter store")
        self.config = config
        self.store = store
        m = FloatBuffer(count: store.values.count, hugePages: true)
        v = FloatBuffer(count: store.values.count, hugePages: true)
        decays = store.entries.map { decayFilter($0.name) }
    }

    /// One update with learning rate `lr` from the store's current gradients times `gradientScale` (a
    /// clipping factor applied as the gradients are read, bit-identical to scaling them first). With
    /// `zeroingGradients` the gradients are zeroed as they are consumed, which saves the separate pass
    /// over them that the next step's `zeroGradients` would make. One parallel pass over the flat buffers.
    public func update(learningRate lr: Float, gradientScale: Float = 1, zeroingGradients: Bool = false) {
        step += 1
        let b1 = config.beta1, b2 = config.beta2, eps = config.epsilon
        let c1 = 1 - Float(Foundation.pow(Double(b1), Double(step))),
            c2 = 1 - Float(Foundation.pow(Double(b2), Double(step)))
        let stepSize = lr / c1
        let c2root = c2.squareRoot()
        let p = store.values.pointer, g = store.gradients!.pointer, mp = m.pointer, vp = v.pointer
        let entries = store.entries, decays = self.decays, wd = config.weightDecay
        guard let last = entries.last else { return }
        parallelFor(last.offset + last.count, grain: 2048) { r in
            // The entries overlapping r (entries are in offset order): the first by binary search.
            var lo = 0, hi = entries.count
            while lo < hi {
                let mid = (lo + hi) / 2;
                if entries[mid].offset + entries[mid].count <= r.lowerBound { lo = mid + 1 } else { hi = mid }
            }
            var i = lo
            while i < entries.count && entries[i].offset < r.upperBound {
                let e = entries[i]
                let sub = max(e.offset, r.lowerBound)..<min(e.offset + e.count, r.upperBound)
                if !sub.isEmpty {
                    Self.kernel(
                        p: p, g: g, m: mp, v: vp, range: sub, b1: b1, b2: b2, eps: eps,
                        decay: decays[i] ? 1 - lr * wd : 1, stepSize: stepSize, c2root: c2root,
                        gradientScale: gradientScale, zeroing: zeroingGradients)
                }
                i += 1
            }
        }
    }

    /// The update over one index range, 16 lanes at a time.
    @inline(__always)
    static func kernel(
        p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
        v: UnsafeMutablePointer<Float>, range: Range<Int>, b1: Float, b2: Float, eps: Float,
        decay: Float, stepSize: Float, c2root: Float, gradientScale: Float, zeroing: Bool
    ) {
        typealias V = SIMD16<Float>
        let pr = UnsafeMutableRawPointer(p), gr = UnsafeMutableRawPointer(g), mr = UnsafeMutableRawPointer(m),
            vr = UnsafeMutableRawPointer(v)
        let vb1 = V(repeating: b1), vb2 = V(repeating: b2), a1 = V(repeating: 1 - b1), a2 = V(repeating: 1 - b2)
        let vdecay = V(repeating: decay), vstep = V(repeating: stepSize), vc2 = V(repeating: c2root),
            veps = V(repeating: eps)
        let vscale = V(repeating: gradientScale)
        var i = range.lowerBound
        while i &+ 16 <= range.upperBound {
            let off = i &* 4
            let gj = gr.loadUnaligned(fromByteOffset: off, as: V.self) * vscale
            if zeroing { gr.storeBytes(of: V(), toByteOffset: off, as: V.self) }
            let mj = vb1 * mr.loadUnaligned(fromByteOffset: off, as: V.self) + a1 * gj
            let vj = vb2 * vr.loadUnaligned(fromByteOffset: off, as: V.self) + a2 * gj * gj
            mr.storeBytes(of: mj, toByteOffset: off, as: V.self)
            vr.storeBytes(of: vj, toByteOffset: off, as: V.self)
            let pj =
                pr.loadUnaligned(fromByteOffset: off, as: V.self) * vdecay - vstep * mj / (vj.squareRoot() / vc2 + veps)
            pr.storeBytes(of: pj, toByteOffset: off, as: V.self)
            i &+= 16
        }
        while i < range.upperBound {
            let gi = g[i] * gradientScale
            if zeroing { g[i] = 0 }
            let mj = b1 * m[i] + (1 - b1) * gi
            let vj = b2 * v[i] + (1 - b2) * gi * gi
            m[i] = mj
            v[i] = vj
            p[i] = p[i] * decay - stepSize * mj / (vj.squareRoot() / c2root + eps)
            i &+= 1
        }
    }
}

// AdamW with decoupled weight decay (Loshchilov & Hutter 2019, Algorithm 2), in PyTorch's form:
//   θ ← θ − lr·λ·θ;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
//   θ ← θ − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε)
// One flat loop over a ParameterStore (moments live in two buffers of the same layout).

import Foundation

public struct AdamWConfig: Codable, Sendable, Equatable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public var weightDecay: Float = 0.0
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

    public init(store: ParameterStore, config: AdamWConfig = AdamWConfig(), decayFilter: (String) -> Bool = { _ in true }) {
        precondition(store.isTrainable, "AdamW needs a trainable parameter store")
        self.config = config
        self.store = store
        m = FloatBuffer(count: store.values.count)
        v = FloatBuffer(count: store.values.count)
        decays = store.entries.map { decayFilter($0.name) }
    }

    /// One update with learning rate `lr` from the store's current gradients.
    public func update(learningRate lr: Float) {
        step += 1
        let b1 = config.beta1, b2 = config.beta2, eps = config.epsilon
        let c1 = 1 - Float(Foundation.pow(Double(b1), Double(step))), c2 = 1 - Float(Foundation.pow(Double(b2), Double(step)))
        let stepSize = lr / c1
        let c2root = c2.squareRoot()
        let p = store.values.pointer, g = store.gradients!.pointer, mp = m.pointer, vp = v.pointer
        for (i, e) in store.entries.enumerated() {
            let decay: Float = decays[i] ? 1 - lr * config.weightDecay : 1
            let o = e.offset, n = e.count
            parallelFor(n, grain: 2048) { r in
                Self.kernel(p: p + o, g: g + o, m: mp + o, v: vp + o, range: r, b1: b1, b2: b2, eps: eps,
                            decay: decay, stepSize: stepSize, c2root: c2root)
            }
        }
    }

    /// The update over one index range, 16 lanes at a time.
    @inline(__always)
    static func kernel(p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                       v: UnsafeMutablePointer<Float>, range: Range<Int>, b1: Float, b2: Float, eps: Float,
                       decay: Float, stepSize: Float, c2root: Float) {
        typealias V = SIMD16<Float>
        let pr = UnsafeMutableRawPointer(p), gr = UnsafeRawPointer(g), mr = UnsafeMutableRawPointer(m), vr = UnsafeMutableRawPointer(v)
        let vb1 = V(repeating: b1), vb2 = V(repeating: b2), a1 = V(repeating: 1 - b1), a2 = V(repeating: 1 - b2)
        let vdecay = V(repeating: decay), vstep = V(repeating: stepSize), vc2 = V(repeating: c2root), veps = V(repeating: eps)
        var i = range.lowerBound
        while i &+ 16 <= range.upperBound {
            let off = i &* 4
            let gj = gr.loadUnaligned(fromByteOffset: off, as: V.self)
            let mj = vb1 * mr.loadUnaligned(fromByteOffset: off, as: V.self) + a1 * gj
            let vj = vb2 * vr.loadUnaligned(fromByteOffset: off, as: V.self) + a2 * gj * gj
            mr.storeBytes(of: mj, toByteOffset: off, as: V.self)
            vr.storeBytes(of: vj, toByteOffset: off, as: V.self)
            let pj = pr.loadUnaligned(fromByteOffset: off, as: V.self) * vdecay - vstep * mj / (vj.squareRoot() / vc2 + veps)
            pr.storeBytes(of: pj, toByteOffset: off, as: V.self)
            i &+= 16
        }
        while i < range.upperBound {
            let mj = b1 * m[i] + (1 - b1) * g[i]
            let vj = b2 * v[i] + (1 - b2) * g[i] * g[i]
            m[i] = mj
            v[i] = vj
            p[i] = p[i] * decay - stepSize * mj / (vj.squareRoot() / c2root + eps)
            i &+= 1
        }
    }
}


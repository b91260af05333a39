// Rotary position embedding, rotate-half convention (Su et al. 2021, Eq. 34; the HF Llama layout:
// pairs are (i, i + D/2), not interleaved). H = heads, D = head dim, N = tokens.
//   y[i]       = x[i]·cos θ_{p,i} − x[i+D/2]·sin θ_{p,i}
//   y[i + D/2] = x[i+D/2]·cos θ_{p,i} + x[i]·sin θ_{p,i},   θ_{p,i} = p · base^(−2i/D)
// The angle table follows transformers exactly: inverse frequencies and p·inv_freq are rounded to
// Float32 before cos/sin, so long positions match PyTorch to the last bits.

import Foundation

/// Llama 3 frequency scaling ("rope_type": "llama3").
public struct RoPEScaling: Codable, Sendable, Equatable {
    public var factor: Double
    public var lowFrequencyFactor: Double
    public var highFrequencyFactor: Double
    public var originalMaxPositions: Int
    public init(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalMaxPositions: Int) {
        self.factor = factor
        self.lowFrequencyFactor = lowFrequencyFactor
        self.highFrequencyFactor = highFrequencyFactor
        self.originalMaxPositions = originalMaxPositions
    }
}

public final class RoPETable: @unchecked Sendable {
    public let headDim: Int
    public let maxPositions: Int
    let cos: FloatBuffer  // [P, D/2]
    let sin: FloatBuffer  // [P, D/2]

    public init(headDim: Int, base: Double, maxPositions: Int, scaling: RoPEScaling? = nil) {
        precondition(headDim % 2 == 0, "RoPE needs an even head dim, got \(headDim)")
        self.headDim = headDim
        self.maxPositions = maxPositions
        let half = headDim / 2
        var invFreq = (0..<half).map { i -> Float in  // float32 as in transformers' default rope init
            1 / powf(Float(base), Float(2 * i) / Float(headDim))
        }
        if let s = scaling {  // transformers `_compute_llama3_parameters`
            let lowWavelen = Double(s.originalMaxPositions) / s.lowFrequencyFactor
            let highWavelen = Double(s.originalMaxPositions) / s.highFrequencyFactor
            invFreq = invFreq.map { f in
                let wavelen = 2 * Double.pi / Double(f)
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return Float(Double(f) / s.factor) }
                let smooth =
                    (Double(s.originalMaxPositions) / wavelen - s.lowFrequencyFactor)
                    / (s.highFrequencyFactor - s.lowFrequencyFactor)
                return Float((1 - smooth) * Double(f) / s.factor + smooth * Double(f))
            }
        }
        cos = FloatBuffer(count: maxPositions * half)
        sin = FloatBuffer(count: maxPositions * half)
        for p in 0..<maxPositions {
            for i in 0..<half {
                let angle = Double(Float(p) * invFreq[i])
                cos.pointer[p * half + i] = Float(Foundation.cos(angle))
                sin.pointer[p * half + i] = Float(Foundation.sin(angle))
            }
        }
    }

    /// Rotates x[N, H, D] in place; token n is at position positions[n].
    public func apply(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, tokens: Int, heads: Int) {
        rotate(x, positions: positions, tokens: tokens, heads: heads, inverse: false)
    }

    /// forward: y = R(p) x  ⇒  dx = R(p)ᵀ dy = R(−p) dy. In place on dx[N, H, D].
    public func applyBackward(
        _ dx: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, tokens: Int, heads: Int
    ) {
        rotate(dx, positions: positions, tokens: tokens, heads: heads, inverse: true)
    }

    private func rotate(
        _ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, tokens: Int, heads: Int, inverse: Bool
    ) {
        let d = headDim, half = d / 2
        let cp = cos.pointer, sp = sin.pointer, maxP = maxPositions
        let sign: Float = inverse ? -1 : 1
        parallelFor(tokens, grain: 2) { r in
            for n in r {
                let p = Int(positions[n])
                precondition(p >= 0 && p < maxP, "position \(p) outside RoPE table of \(maxP)")
                let c = cp + p &* half, s = sp + p &* half
                for h in 0..<heads {
                    let v = x + (n &* heads &+ h) &* d
                    for i in 0..<half {
                        let a = v[i], b = v[i &+ half], si = sign * s[i]
                        v[i] = a * c[i] - b * si
                        v[i &+ half] = b * c[i] + a * si
                    }
                }
            }
        }
    }
}

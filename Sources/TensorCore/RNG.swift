// Seeded, reproducible random numbers: xoshiro256** (Blackman & Vigna 2018) seeded through SplitMix64.
// The same seed gives the same stream on every machine and run; `state` can be saved in a checkpoint.

import Foundation

public struct RNG: RandomNumberGenerator, Codable, Sendable, Equatable {
    public private(set) var state: [UInt64]

    public init(seed: UInt64) {
        var z = seed
        var s: [UInt64] = []
        for _ in 0..<4 {  // SplitMix64
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            s.append(x ^ (x >> 31))
        }
        state = s
    }

    /// Restores a generator from `state` (as saved in a checkpoint).
    public init(state: [UInt64]) {
        precondition(state.count == 4 && state.contains { $0 != 0 }, "xoshiro256** needs 4 words, not all zero")
        self.state = state
    }

    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func uniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) * 0x1p-53, 1e-300), u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// Fills x[n] with N(0, std²).
    public mutating func fillNormal(_ x: UnsafeMutablePointer<Float>, count n: Int, std: Float = 1) {
        for i in 0..<n { x[i] = normal() * std }
    }

    /// Fills x[n] with U(lo, hi).
    public mutating func fillUniform(_ x: UnsafeMutablePointer<Float>, count n: Int, _ lo: Float, _ hi: Float) {
        for i in 0..<n { x[i] = uniform(lo, hi) }
    }

    /// An independent generator derived from this one's stream (e.g. one per data worker or adapter).
    public mutating func split() -> RNG { RNG(seed: next()) }
}

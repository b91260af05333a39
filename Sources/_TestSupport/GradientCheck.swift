// Test support (not API): finite-difference gradient checking shared by the test targets. The scalar is L = Σ w ⊙ y
// with fixed random w, accumulated in
// Double; central differences with step 1e-3 in Float32 carry ~1e-3 relative noise, so we require the
// relative error ‖analytic − numeric‖ / ‖numeric‖ ≤ 1e-2 (STYLE.md §8) and every element within
// 1e-2 · max(1, ‖numeric‖∞).

import TensorCore
import Testing

public struct Rand {
    public var rng: RNG
    public init(_ seed: UInt64) { rng = RNG(seed: seed) }
    public mutating func buffer(_ n: Int, scale: Float = 1) -> FloatBuffer {
        let b = FloatBuffer(count: n)
        rng.fillNormal(b.pointer, count: n, std: scale)
        return b
    }
}

/// Σ w ⊙ y in Double.
public func weightedSum(_ y: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ n: Int) -> Double {
    var s = 0.0
    for i in 0..<n { s += Double(y[i]) * Double(w[i]) }
    return s
}

/// Central-difference gradient of `loss` with respect to x[0..<n].
public func numericGradient(_ x: UnsafeMutablePointer<Float>, count n: Int, step: Float = 1e-3, _ loss: () -> Double)
    -> [Float]
{
    (0..<n).map { i in
        let saved = x[i]
        x[i] = saved + step
        let up = loss()
        x[i] = saved - step
        let down = loss()
        x[i] = saved
        return Float((up - down) / (2 * Double(step)))
    }
}

public func expectClose(
    _ analytic: UnsafePointer<Float>, _ numeric: [Float], _ what: String,
    tolerance: Float = 1e-2, sourceLocation: SourceLocation = #_sourceLocation
) {
    var diff2 = 0.0, ref2 = 0.0
    var refMax: Float = 0
    for i in numeric.indices {
        diff2 += Double(analytic[i] - numeric[i]) * Double(analytic[i] - numeric[i])
        ref2 += Double(numeric[i]) * Double(numeric[i])
        refMax = max(refMax, abs(numeric[i]))
    }
    let rel = (diff2 / max(ref2, 1e-30)).squareRoot()
    #expect(
        ref2 > 0, "\(what): numeric gradient is identically zero, the check would be vacuous",
        sourceLocation: sourceLocation)
    #expect(rel <= Double(tolerance), "\(what): relative error \(rel)", sourceLocation: sourceLocation)
    var worst: Float = 0
    for i in numeric.indices { worst = max(worst, abs(analytic[i] - numeric[i])) }
    #expect(
        worst <= tolerance * max(1, refMax), "\(what): worst element error \(worst) (max |g| \(refMax))",
        sourceLocation: sourceLocation)
}

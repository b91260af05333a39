// Memory-bound element-wise ops and reductions in Swift SIMD16 over hoisted raw pointers
// (swift-compute.md §1: these reach ~30–35 GB/s on one thread in the default build; AVX-512 does not help).
// Polynomials use `a * b + c`, never `addingProduct`, which lowers to libm fmaf calls without a target CPU.

public enum Elementwise {
    /// y = x
    @inlinable public static func copy(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int) {
        y.update(from: x, count: n)
    }

    /// y += a · x
    @inlinable public static func axpy(
        _ y: UnsafeMutablePointer<Float>, _ a: Float, _ x: UnsafePointer<Float>, count n: Int
    ) {
        let raw = UnsafeMutableRawPointer(y), xr = UnsafeRawPointer(x)
        let va = SIMD16<Float>(repeating: a)
        var i = 0
        while i &+ 16 <= n {
            let v =
                raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
                + va * xr.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
            raw.storeBytes(of: v, toByteOffset: i &* 4, as: SIMD16<Float>.self)
            i &+= 16
        }
        while i < n { y[i] += a * x[i]; i &+= 1 }
    }

    /// z = x + y (z may alias x or y)
    @inlinable public static func add(
        _ z: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count n: Int
    ) {
        let zr = UnsafeMutableRawPointer(z), xr = UnsafeRawPointer(x), yr = UnsafeRawPointer(y)
        var i = 0
        while i &+ 16 <= n {
            let v =
                xr.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
                + yr.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
            zr.storeBytes(of: v, toByteOffset: i &* 4, as: SIMD16<Float>.self)
            i &+= 16
        }
        while i < n { z[i] = x[i] + y[i]; i &+= 1 }
    }

    /// x *= a
    @inlinable public static func scale(_ x: UnsafeMutablePointer<Float>, by a: Float, count n: Int) {
        let raw = UnsafeMutableRawPointer(x)
        let va = SIMD16<Float>(repeating: a)
        var i = 0
        while i &+ 16 <= n {
            raw.storeBytes(
                of: raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self) * va,
                toByteOffset: i &* 4, as: SIMD16<Float>.self)
            i &+= 16
        }
        while i < n { x[i] *= a; i &+= 1 }
    }
}

public enum Reductions {
    /// Σ x (two SIMD accumulators; fixed order, so deterministic).
    @inlinable public static func sum(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        let xr = UnsafeRawPointer(x)
        var a = SIMD16<Float>(), b = SIMD16<Float>()
        var i = 0
        while i &+ 32 <= n {
            a += xr.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
            b += xr.loadUnaligned(fromByteOffset: (i &+ 16) &* 4, as: SIMD16<Float>.self)
            i &+= 32
        }
        var s = (a + b).sum()
        while i < n { s += x[i]; i &+= 1 }
        return s
    }

    /// Σ x · y
    @inlinable public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) -> Float {
        let xr = UnsafeRawPointer(x), yr = UnsafeRawPointer(y)
        var a = SIMD16<Float>(), b = SIMD16<Float>()
        var i = 0
        while i &+ 32 <= n {
            a +=
                xr.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
                * yr.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
            b +=
                xr.loadUnaligned(fromByteOffset: (i &+ 16) &* 4, as: SIMD16<Float>.self)
                * yr.loadUnaligned(fromByteOffset: (i &+ 16) &* 4, as: SIMD16<Float>.self)
            i &+= 32
        }
        var s = (a + b).sum()
        while i < n { s += x[i] * y[i]; i &+= 1 }
        return s
    }

    /// Σ x·y·z (16 lanes at a time; a scalar loop would not vectorise, the sum is not reassociated for it).
    @inlinable public static func dot(
        _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ z: UnsafePointer<Float>,
        count n: Int
    ) -> Float {
        let xr = UnsafeRawPointer(x), yr = UnsafeRawPointer(y), zr = UnsafeRawPointer(z)
        var a = SIMD16<Float>()
        var i = 0
        while i &+ 16 <= n {
            a +=
                xr.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
                * yr.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
                * zr.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
            i &+= 16
        }
        var s = a.sum()
        while i < n { s += x[i] * y[i] * z[i]; i &+= 1 }
        return s
    }

    /// Σ x² (for gradient norms over millions of values): Float partial sums over 64 Ki blocks, computed in
    /// parallel and added in Double in block order, so the value does not depend on the thread count.
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count n: Int) -> Double {
        let block = 1 << 16
        var partial = [Double](repeating: 0, count: (n + block - 1) / block)
        partial.withUnsafeMutableBufferPointer { pp in
            parallelFor(pp.count, grain: 2) { r in
                for b in r { pp[b] = Double(dot(x + b * block, x + b * block, count: min(block, n - b * block))) }
            }
        }
        var total = 0.0
        for p in partial { total += p }
        return total
    }

    /// max x (−∞ for n = 0)
    @inlinable public static func max(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var m = -Float.infinity
        for i in 0..<n where x[i] > m { m = x[i] }
        return m
    }

    /// Index of the largest value (first on ties).
    @inlinable public static func argmax(_ x: UnsafePointer<Float>, count n: Int) -> Int {
        var best = 0
        var m = -Float.infinity
        for i in 0..<n where x[i] > m { m = x[i]; best = i }
        return best
    }
}

// Quantised weights: exact dequantisation of hand-built ggml blocks (expected values computed here,
// independently of the kernels), and the few-row / tiled products and backwardInput against fp32 sgemm
// on the dequantised matrix, on every C path the CPU has (AVX-512, AVX2, portable), with and without a row map.

import Testing
import _CKernels
import _TestSupport

@testable import TensorCore

/// A random matrix in a ggml block format with its exact Float32 values.
private struct HandQuantized {
    let type: QuantizedType
    let rows: Int, columns: Int
    var bytes: [UInt8] = []
    /// Physical rows, dequantised: the value ggml's reference dequantiser gives.
    var values: [Float] = []

    init(_ type: QuantizedType, rows: Int, columns: Int, seed: UInt64) {
        self.type = type
        self.rows = rows
        self.columns = columns
        var rng = RNG(seed: seed)
        func byte() -> UInt8 { UInt8(truncatingIfNeeded: rng.next()) }
        // fp16 bits of moderate magnitude (2^-8 … 2^1), a few subnormals and zeros, either sign.
        func scaleBits(allowZero: Bool) -> UInt16 {
            let sign: UInt16 = rng.next() & 1 == 0 ? 0 : 0x8000
            let roll = rng.next() % 16
            if roll == 0 { return sign | UInt16(rng.next() % 1024) }  // subnormal (or zero)
            if roll == 1 && allowZero { return sign }
            let exponent = UInt16(7 + rng.next() % 10)
            return sign | exponent << 10 | UInt16(rng.next() % 1024)
        }
        func append16(_ v: UInt16) { bytes.append(UInt8(v & 0xFF)); bytes.append(UInt8(v >> 8)) }
        for _ in 0..<rows {
            switch type {
            case .q4_1:
                for _ in 0..<(columns / 32) {
                    let dBits = scaleBits(allowZero: true), mBits = scaleBits(allowZero: true)
                    append16(dBits); append16(mBits)
                    let d = halfValue(dBits), m = halfValue(mBits)
                    let qs = (0..<16).map { _ in byte() }
                    bytes += qs
                    var block = [Float](repeating: 0, count: 32)
                    for j in 0..<16 {
                        let lo = Float(qs[j] & 0x0F) * d, hi = Float(qs[j] >> 4) * d  // rounded, then + m rounded
                        block[j] = lo + m
                        block[j + 16] = hi + m
                    }
                    values += block
                }
            case .q8_0:
                for _ in 0..<(columns / 32) {
                    let dBits = scaleBits(allowZero: true)
                    append16(dBits)
                    let d = halfValue(dBits)
                    for _ in 0..<32 {
                        let q = byte()
                        bytes.append(q)
                        values.append(Float(Int8(bitPattern: q)) * d)
                    }
                }
            case .f16:
                for _ in 0..<columns {
                    var bits = UInt16(truncatingIfNeeded: rng.next())
                    if (bits >> 10) & 0x1F == 0x1F { bits &= 0xBFFF }  // no inf/NaN
                    append16(bits)
                    values.append(halfValue(bits))
                }
            case .bf16:
                for _ in 0..<columns {
                    // Exponents 2^-15 … 2^8 (products must not overflow), 1 in 16 subnormal.
                    let random = UInt16(truncatingIfNeeded: rng.next())
                    let exponent: UInt16 = random % 16 == 0 ? 0 : 112 + (random >> 4) % 24
                    let bits = (random & 0x8000) | exponent << 7 | UInt16(truncatingIfNeeded: rng.next()) & 0x7F
                    append16(bits)
                    values.append(Float(bitPattern: UInt32(bits) << 16))
                }
            case .f32:
                for _ in 0..<columns {
                    let v = rng.normal()
                    withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
                    values.append(v)
                }
            }
        }
        precondition(bytes.count == rows * type.rowByteCount(columns: columns))
    }

    func matrix(rowMap: [Int32]?) -> QuantizedMatrix {
        QuantizedMatrix(type: type, rows: rows, columns: columns, bytes: bytes, rowMap: rowMap)
    }

    /// Logical rows (after the map) as a FloatBuffer.
    func logical(rowMap: [Int32]?) -> FloatBuffer {
        let out = FloatBuffer(count: rows * columns)
        for r in 0..<rows {
            let p = rowMap.map { Int($0[r]) } ?? r
            for c in 0..<columns { out.pointer[r * columns + c] = values[p * columns + c] }
        }
        return out
    }
}

/// fp16 bits → Float from the definition (± f · 2^(e−25) with the implicit bit), not by bit tricks.
private func halfValue(_ h: UInt16) -> Float {
    let sign: FloatingPointSign = h & 0x8000 != 0 ? .minus : .plus
    let e = Int((h >> 10) & 0x1F), f = Float(h & 0x3FF)
    precondition(e != 31)
    if e == 0 { return Float(sign: sign, exponent: -24, significand: f) }
    return Float(sign: sign, exponent: e - 25, significand: 1024 + f)
}

/// f rounded to bf16 (8 significant bits, nearest, ties to even; subnormals → ±0, as vcvtneps2bf16), from
/// the definition rather than by bit tricks.
func bf16Rounded(_ f: Float) -> Float {
    if f.isNaN || f.isInfinite { return f }
    if f == 0 || f.isSubnormal { return f.sign == .minus ? -0.0 : 0 }
    let unit = Float(sign: .plus, exponent: f.exponent - 7, significand: 1)
    return (f / unit).rounded(.toNearestOrEven) * unit
}

/// A copy of x with every element rounded to bf16 (what QuantizedLinear multiplies BF16 weights with).
private func bf16Rounded(_ x: FloatBuffer) -> FloatBuffer {
    let out = FloatBuffer(count: x.count)
    for e in 0..<x.count { out.pointer[e] = bf16Rounded(x.pointer[e]) }
    return out
}

private func permutation(_ n: Int, seed: UInt64) -> [Int32] {
    var rng = RNG(seed: seed)
    var p = (0..<n).map(Int32.init)
    p.shuffle(using: &rng)
    return p
}

/// y = x Wᵀ (+ y0) by sgemm on the exact dequantised weights, and the per-element error scale
/// Σ_k |x w| + |y0| (the bound of a float sum in any order is ~K·ε times this).
private func reference(
    x: FloatBuffer, w: FloatBuffer, y0: FloatBuffer, rows n: Int, out o: Int, in i: Int,
    accumulate: Bool
) -> (FloatBuffer, [Float]) {
    let y = FloatBuffer(count: n * o)
    y.pointer.update(from: y0.pointer, count: n * o)
    MatMul.gemm(y.pointer, x.pointer, w.pointer, transB: true, m: n, n: o, k: i, beta: accumulate ? 1 : 0)
    var scale = [Float](repeating: 0, count: n * o)
    for r in 0..<n {
        for c in 0..<o {
            var s: Float = accumulate ? abs(y0.pointer[r * o + c]) : 0
            for k in 0..<i { s += abs(x.pointer[r * i + k] * w.pointer[c * i + k]) }
            scale[r * o + c] = s
        }
    }
    return (y, scale)
}

private func expectClose(_ got: UnsafePointer<Float>, _ want: UnsafePointer<Float>, scale: [Float], _ what: String) {
    var worst: Float = 0, at = -1
    for e in 0..<scale.count {
        let err = abs(got[e] - want[e]) / max(scale[e], 1e-30)
        if !(err <= worst) { worst = err; at = e }
    }
    #expect(worst <= 1e-5, "\(what): largest relative error \(worst) at element \(at)")
}

@Suite struct QuantizedMatrixTests {
    static let types: [QuantizedType] = [.q4_1, .q8_0, .f16, .bf16, .f32]

    /// Columns that exercise the float types' partial chunks (K % 32 = 5 and 18).
    static func columns(_ t: QuantizedType, _ quantized: Int, _ plain: Int) -> Int {
        t.blockSize == 32 ? quantized : plain
    }

    @Test(arguments: types)
    func dequantizationIsExact(type: QuantizedType) {
        for cols in [Self.columns(type, 96, 37), Self.columns(type, 32, 50)] {
            let rows = 9
            let q = HandQuantized(type, rows: rows, columns: cols, seed: 7)
            for map in [nil, permutation(rows, seed: 3)] {
                let m = q.matrix(rowMap: map)
                let want = q.logical(rowMap: map)
                // Whole matrix (threaded, default dispatch) and a row range.
                let all = FloatBuffer(count: rows * cols)
                m.dequantize(into: all.pointer)
                let part = FloatBuffer(count: 4 * cols)
                m.dequantizeRows(3..<7, into: part.pointer)
                // Every C path directly on this thread.
                var paths: [[Float]] = []
                for path in KernelDispatch.availablePaths {
                    rk_set_thread_path(path.rawValue)
                    let out = FloatBuffer(count: rows * cols)
                    rk_dequant_rows(out.pointer, m.blocks, type.rawValue, m.rowBytes, m.rowMapPointer, 0, rows, cols)
                    rk_set_thread_path(-1)
                    paths.append(out.array)
                }
                for e in 0..<(rows * cols) {
                    let bits = want.pointer[e].bitPattern
                    let ok = all.pointer[e].bitPattern == bits && paths.allSatisfy { $0[e].bitPattern == bits }
                    if !ok {
                        Issue.record(
                            Comment(
                                rawValue:
                                    "\(type) cols \(cols) map \(map != nil): element \(e) want \(want.pointer[e]) got"
                                    + " \(all.pointer[e]) / paths \(KernelDispatch.availablePaths)"
                                    + " \(paths.map { $0[e] })"
                            )
                        )
                        break
                    }
                }
                for e in 0..<(4 * cols) where part.pointer[e].bitPattern != want.pointer[3 * cols + e].bitPattern {
                    Issue.record("\(type) dequantizeRows(3..<7) element \(e)")
                    break
                }
            }
        }
    }

    @Test func byteCountAndLayout() {
        #expect(QuantizedType.q4_1.rowByteCount(columns: 576) == 360)
        #expect(QuantizedType.q8_0.rowByteCount(columns: 576) == 612)
        #expect(QuantizedType.bf16.rowByteCount(columns: 5) == 10)
        let q = HandQuantized(.q4_1, rows: 6, columns: 64, seed: 1)
        #expect(q.matrix(rowMap: nil).byteCount == 6 * 40)
        #expect(q.matrix(rowMap: permutation(6, seed: 1)).byteCount == 6 * 40 + 24)
        #expect(q.matrix(rowMap: [5, 4, 3, 2, 1, 0]).rowMap == [5, 4, 3, 2, 1, 0])
    }

    @Test func llamaRoPERowMapMatchesTheGGUFUnpermute() {
        let heads = 3, d = 8
        let map = QuantizedMatrix.llamaRoPERowMap(heads: heads, headDim: d)
        // Llama+GGUF: HF[h·D + j·D/2 + i] = GGUF[h·D + 2i + j].
        for h in 0..<heads {
            for i in 0..<(d / 2) {
                for j in 0..<2 {
                    #expect(map[h * d + j * d / 2 + i] == Int32(h * d + 2 * i + j))
                }
            }
        }
        #expect(Set(map).count == heads * d)
    }

    /// (M, O, K): K odd multiple of 32 for the block types (K + 5 for the plain ones), odd O.
    @Test(arguments: [
        (1, 37, 96), (2, 9, 128), (3, 41, 160), (4, 13, 32), (5, 9, 64), (16, 13, 96), (12, 29, 160), (14, 50, 288),
    ])
    func fewRowsMatchesSgemm(rows n: Int, outF o: Int, inQ: Int) {
        for type in Self.types {
            let i = Self.columns(type, inQ, inQ + 5)
            let q = HandQuantized(type, rows: o, columns: i, seed: UInt64(n * 1000 + o))
            var r = Rand(UInt64(n + o))
            let x = r.buffer(n * i), y0 = r.buffer(n * o)
            let xr = bf16Rounded(x)
            for map in [nil, permutation(o, seed: 11)] {
                let m = q.matrix(rowMap: map)
                let w = q.logical(rowMap: map)
                for accumulate in [false, true] {
                    let (want, scale) = reference(x: x, w: w, y0: y0, rows: n, out: o, in: i, accumulate: accumulate)
                    let what = "\(type) M \(n) O \(o) K \(i) map \(map != nil) acc \(accumulate)"
                    let y = FloatBuffer(count: n * o)
                    y.pointer.update(from: y0.pointer, count: n * o)
                    QuantizedLinear.forward(
                        out: y.pointer, input: x.pointer, weight: m, rows: n, accumulate: accumulate)
                    if type == .bf16 {  // bf16 products: the inputs are rounded to bf16 first, on every path
                        let (wantR, scaleR) = reference(
                            x: xr, w: w, y0: y0, rows: n, out: o, in: i, accumulate: accumulate)
                        expectClose(y.pointer, wantR.pointer, scale: scaleR, what)
                        bf16TransposedKernel(
                            m, xr: xr, y0: y0, want: wantR, scale: scaleR, rows: n, accumulate: accumulate, what)
                    } else {
                        expectClose(y.pointer, want.pointer, scale: scale, what)
                    }
                    // Each C path on this thread, in two column ranges (one ending mid-tile).
                    for path in KernelDispatch.availablePaths {
                        y.pointer.update(from: y0.pointer, count: n * o)
                        rk_set_thread_path(path.rawValue)
                        let split = o / 2 + 1
                        for (lo, hi) in [(0, split), (split, o)] {
                            rk_qgemm_few_rows_nt(
                                y.pointer, o, x.pointer, i, m.blocks, type.rawValue, m.rowBytes,
                                m.rowMapPointer, n, lo, hi, i, accumulate ? 1 : 0)
                        }
                        rk_set_thread_path(-1)
                        expectClose(y.pointer, want.pointer, scale: scale, what + " path \(path)")
                        // The transposed kernel over the same two ranges.
                        let xt = FloatBuffer(count: i * 16)
                        y.pointer.update(from: y0.pointer, count: n * o)
                        rk_set_thread_path(path.rawValue)
                        rk_pack_rows_t16(xt.pointer, x.pointer, i, n, i)
                        for (lo, hi) in [(0, split), (split, o)] {
                            rk_qgemm_few_rows_t16(
                                y.pointer, o, xt.pointer, m.blocks, type.rawValue, m.rowBytes,
                                m.rowMapPointer, n, lo, hi, i, accumulate ? 1 : 0)
                        }
                        rk_set_thread_path(-1)
                        expectClose(y.pointer, want.pointer, scale: scale, what + " transposed path \(path)")
                    }
                }
            }
        }
    }

    /// rk_bf16_gemm_few_rows_nt and rk_bf16_gemm_few_rows_t16 (vdpbf16ps, and their portable twins) over two
    /// column ranges, one ending mid-tile; the transposed one on inputs packed as bf16 pairs, for 2 ≤ M ≤ 16.
    func bf16TransposedKernel(
        _ m: QuantizedMatrix, xr: FloatBuffer, y0: FloatBuffer, want: FloatBuffer, scale: [Float],
        rows n: Int, accumulate: Bool, _ what: String
    ) {
        let o = m.rows, i = m.columns, split = o / 2 + 1
        let y = FloatBuffer(count: n * o), xt = FloatBuffer(count: i * 16)
        // The dot-product kernel on bf16 rows padded to 32 (any M).
        let ld = (i + 31) / 32 * 32
        var xb = [UInt16](repeating: 0, count: n * ld)
        for r in 0..<n { for c in 0..<i { xb[r * ld + c] = UInt16(xr.pointer[r * i + c].bitPattern >> 16) } }
        for path in KernelDispatch.availablePaths {
            y.pointer.update(from: y0.pointer, count: n * o)
            rk_set_thread_path(path.rawValue)
            for (lo, hi) in [(0, split), (split, o)] {
                rk_bf16_gemm_few_rows_nt(
                    y.pointer, o, xb, ld, m.blocks, m.rowBytes, m.rowMapPointer, n, lo, hi, i,
                    accumulate ? 1 : 0)
            }
            rk_set_thread_path(-1)
            expectClose(y.pointer, want.pointer, scale: scale, what + " bf16 dot rows path \(path)")
        }
        guard n >= 2 && n <= 16 else { return }
        for path in KernelDispatch.availablePaths {
            y.pointer.update(from: y0.pointer, count: n * o)
            rk_set_thread_path(path.rawValue)
            rk_pack_rows_t16(xt.pointer, xr.pointer, i, n, i)
            rk_bf16_pairs_t16(xt.pointer, i)
            for (lo, hi) in [(0, split), (split, o)] {
                rk_bf16_gemm_few_rows_t16(
                    y.pointer, o, xt.pointer, m.blocks, m.rowBytes, m.rowMapPointer, n, lo, hi, i,
                    accumulate ? 1 : 0)
            }
            rk_set_thread_path(-1)
            expectClose(y.pointer, want.pointer, scale: scale, what + " bf16 dot path \(path)")
        }
    }

    /// Rounding to bf16 on both C paths equals the definition: ties to even, subnormals to ±0, ±inf and NaN
    /// kept, overflow to inf; the bf16 bits are the rounded value's upper half; bf16 pairs pack two of them.
    @Test func bf16RoundingMatchesTheDefinition() {
        var values: [Float] = [
            0, -0.0, 1, -1, .infinity, -.infinity, .nan, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            .leastNonzeroMagnitude, -.leastNormalMagnitude / 2, .leastNormalMagnitude, 1 + 0x1p-8, 1 + 3 * 0x1p-8,
            1 + 0x1p-8 + 0x1p-20, 255.5, 256.5, -3.0e38, 65504,
        ]
        var r = RNG(seed: 4)
        for _ in 0..<4000 {
            values.append(
                Float(
                    sign: r.next() & 1 == 0 ? .plus : .minus, exponent: Int(r.next() % 200) - 100,
                    significand: 1 + Float(r.next() % (1 << 23)) * 0x1p-23))
        }
        let n = values.count
        for path in KernelDispatch.availablePaths {
            rk_set_thread_path(path.rawValue)
            var rounded = [Float](repeating: 0, count: n), bits = [UInt16](repeating: 0, count: n)
            values.withUnsafeBufferPointer { rk_bf16_round(&rounded, $0.baseAddress!, n) }
            values.withUnsafeBufferPointer { rk_f32_to_bf16(&bits, $0.baseAddress!, n) }
            rk_set_thread_path(-1)
            for e in 0..<n {
                let want = bf16Rounded(values[e])
                let same = want.isNaN ? rounded[e].isNaN : rounded[e].bitPattern == want.bitPattern
                #expect(same, "path \(path): bf16(\(values[e])) = \(rounded[e]), want \(want)")
                #expect(UInt32(bits[e]) << 16 == rounded[e].bitPattern, "path \(path): bits of \(values[e])")
                if !same { break }
            }
        }
        // Pairs: 16 lanes × k = 5 columns (the last pair has an empty high half).
        let k = 5
        var x = Rand(8)
        let rows = x.buffer(16 * k)
        for path in KernelDispatch.availablePaths {
            rk_set_thread_path(path.rawValue)
            let xt = FloatBuffer(count: k * 16)
            rk_pack_rows_t16(xt.pointer, rows.pointer, k, 16, k)
            rk_bf16_pairs_t16(xt.pointer, k)
            rk_set_thread_path(-1)
            let words = UnsafeRawPointer(xt.pointer).assumingMemoryBound(to: UInt32.self)
            for p in 0..<3 {
                for lane in 0..<16 {
                    let lo = bf16Rounded(rows.pointer[lane * k + 2 * p]).bitPattern >> 16
                    let hi = 2 * p + 1 < k ? bf16Rounded(rows.pointer[lane * k + 2 * p + 1]).bitPattern >> 16 : 0
                    #expect(words[p * 16 + lane] == lo | hi << 16, "path \(path) pair \(p) lane \(lane)")
                }
            }
        }
    }

    /// QuantizedMatrix(bf16From:) holds the rounded values; forward at decode batch sizes (1, 5, 12, 16) and
    /// prefill size (40, three blocks of 16 rows) equals Σ bf16(x)·bf16(w) computed here in Double, with and
    /// without the AVX512_BF16 kernels.
    @Test func bf16CopyMultipliesInBF16() {
        let o = 29, i = 70
        var r = Rand(12)
        let dense = r.buffer(o * i)
        let m = QuantizedMatrix(bf16From: dense.pointer, rows: o, columns: i)
        #expect(m.type == .bf16 && m.byteCount == o * i * 2)
        let back = FloatBuffer(count: o * i)
        m.dequantize(into: back.pointer)
        for e in 0..<(o * i) where back.pointer[e].bitPattern != bf16Rounded(dense.pointer[e]).bitPattern {
            Issue.record("element \(e): \(back.pointer[e]) vs \(bf16Rounded(dense.pointer[e]))")
            break
        }
        for (n, path) in [1, 5, 12, 16, 40].flatMap({ n in KernelDispatch.availablePaths.map { (n, $0) } }) {
            // Below AVX-512 (or without AVX512_BF16) the rounded inputs take the generic quantised / sgemm paths.
            let x = r.buffer(n * i), y = FloatBuffer(count: n * o)
            rk_set_thread_path(path.rawValue)
            QuantizedLinear.forward(out: y.pointer, input: x.pointer, weight: m, rows: n)
            rk_set_thread_path(-1)
            for row in 0..<n {
                for c in 0..<o {
                    var s = 0.0, mag = 0.0
                    for k in 0..<i {
                        let t = Double(bf16Rounded(x.pointer[row * i + k])) * Double(back.pointer[c * i + k])
                        s += t
                        mag += abs(t)
                    }
                    let err = abs(Double(y.pointer[row * o + c]) - s) / mag
                    #expect(
                        err <= 1e-5, "rows \(n) path \(path): y[\(row), \(c)] = \(y.pointer[row * o + c]), want \(s)")
                }
            }
        }
    }

    /// bf16 products are batch-invariant from 12 rows up on every path: a row's outputs in a 40-row product
    /// (16-row blocks) are bit for bit those of a 14-row one (decoding a batch), so decoding and re-scoring agree.
    @Test func bf16ProductsAreBatchInvariant() {
        let o = 37, i = 96
        var r = Rand(31)
        let dense = r.buffer(o * i), x = r.buffer(40 * i)
        let m = QuantizedMatrix(bf16From: dense.pointer, rows: o, columns: i)
        for path in KernelDispatch.availablePaths {
            let many = FloatBuffer(count: 40 * o), few = FloatBuffer(count: 14 * o)
            KernelDispatch.withPath(path) {
                QuantizedLinear.forward(out: many.pointer, input: x.pointer, weight: m, rows: 40)
                // spans two blocks
                QuantizedLinear.forward(out: few.pointer, input: x.pointer + 20 * i, weight: m, rows: 14)
            }
            let differing = (0..<(14 * o)).filter { few.pointer[$0].bitPattern != many.pointer[20 * o + $0].bitPattern }
            #expect(
                differing.isEmpty, "path \(path): \(differing.count) outputs differ, first at \(differing.first ?? -1)")
        }
    }

    /// N > fewRowsLimit: tiles dequantised then sgemm; a small tile forces several tiles and a short last one.
    @Test(arguments: [QuantizedType.q4_1, .q8_0, .bf16])
    func tiledForwardAndBackwardInputMatchSgemm(type: QuantizedType) {
        let n = 19, o = 45, i = Self.columns(type, 96, 101)
        let q = HandQuantized(type, rows: o, columns: i, seed: 5)
        var r = Rand(9)
        let x = r.buffer(n * i), y0 = r.buffer(n * o), dy = r.buffer(n * o), dx0 = r.buffer(n * i)
        for map in [nil, permutation(o, seed: 2)] {
            let m = q.matrix(rowMap: map)
            let w = q.logical(rowMap: map)
            for accumulate in [false, true] {
                let what = "\(type) map \(map != nil) acc \(accumulate)"
                let (want, scale) = reference(
                    x: type == .bf16 ? bf16Rounded(x) : x, w: w, y0: y0, rows: n, out: o, in: i,
                    accumulate: accumulate)
                for tileFloats in [QuantizedLinear.tileFloats, 16 * i] {  // one tile; three tiles (16, 16, 13 rows)
                    let y = FloatBuffer(count: n * o)
                    y.pointer.update(from: y0.pointer, count: n * o)
                    QuantizedLinear.forward(
                        out: y.pointer, input: x.pointer, weight: m, rows: n, accumulate: accumulate,
                        tileFloats: tileFloats)
                    expectClose(y.pointer, want.pointer, scale: scale, what + " forward tile \(tileFloats)")
                }
                // dx = dy W (+ dx0), against sgemm NN on the dequantised W (bf16: dy rounded first, as the forward's
                // inputs).
                let dyIn = type == .bf16 ? bf16Rounded(dy) : dy
                let wantDx = FloatBuffer(count: n * i)
                wantDx.pointer.update(from: dx0.pointer, count: n * i)
                MatMul.gemm(wantDx.pointer, dyIn.pointer, w.pointer, m: n, n: i, k: o, beta: accumulate ? 1 : 0)
                var dxScale = [Float](repeating: 0, count: n * i)
                for row in 0..<n {
                    for c in 0..<i {
                        var s: Float = accumulate ? abs(dx0.pointer[row * i + c]) : 0
                        for k in 0..<o { s += abs(dyIn.pointer[row * o + k] * w.pointer[k * i + c]) }
                        dxScale[row * i + c] = s
                    }
                }
                for rows in [n, 3] {  // the many-row path and a decoding-sized batch
                    for tileFloats in [QuantizedLinear.tileFloats, 16 * i] {
                        let dx = FloatBuffer(count: n * i)
                        dx.pointer.update(from: dx0.pointer, count: n * i)
                        QuantizedLinear.backwardInput(
                            dInput: dx.pointer, dOut: dy.pointer, weight: m, rows: rows,
                            accumulate: accumulate, tileFloats: tileFloats)
                        expectClose(
                            dx.pointer, wantDx.pointer, scale: Array(dxScale[0..<(rows * i)]),
                            what + " backwardInput rows \(rows) tile \(tileFloats)")
                    }
                }
            }
        }
    }

    /// Decode panels (Q4_1 / Q8_0 at 12–16 rows): bit-identical to the fp32 transposed tile on the dequantised
    /// matrix on every path (each path's kernels do the same operations in the same order), built once and counted in
    /// byteCount; each C path over panel ranges that split the matrix, against sgemm.
    @Test(arguments: [(16, 45, 96), (12, 16, 160), (14, 200, 288), (13, 33, 64)])
    func decodePanelsMatchTheFP32Tile(rows n: Int, outF o: Int, inF i: Int) {
        for type in [QuantizedType.q4_1, .q8_0] {
            let q = HandQuantized(type, rows: o, columns: i, seed: UInt64(n * 31 + o))
            var r = Rand(UInt64(n * 7 + o))
            let x = r.buffer(n * i), y0 = r.buffer(n * o)
            for map in [nil, permutation(o, seed: 3)] {
                let m = q.matrix(rowMap: map), w = q.logical(rowMap: map)
                #expect(!m.hasDecodePanels)
                let blockBytes = m.byteCount
                for accumulate in [false, true] {
                    let what = "\(type) M \(n) O \(o) K \(i) map \(map != nil) acc \(accumulate)"
                    let dense = FloatBuffer(count: n * o), y = FloatBuffer(count: n * o)
                    dense.pointer.update(from: y0.pointer, count: n * o)
                    y.pointer.update(from: y0.pointer, count: n * o)
                    Linear.forward(
                        out: dense.pointer, input: x.pointer, weight: w.pointer, rows: n, inFeatures: i, outFeatures: o,
                        accumulate: accumulate)
                    QuantizedLinear.forward(
                        out: y.pointer, input: x.pointer, weight: m, rows: n, accumulate: accumulate)
                    // Bit-identical on every path: the panel kernel and the fp32 tile of the same path run the same
                    // operations in the same order (FMA chains over k on AVX2/AVX-512, multiply-then-add in C).
                    for path in KernelDispatch.availablePaths {
                        let yp = FloatBuffer(count: n * o), dp = FloatBuffer(count: n * o)
                        yp.pointer.update(from: y0.pointer, count: n * o)
                        dp.pointer.update(from: y0.pointer, count: n * o)
                        KernelDispatch.withPath(path) {
                            Linear.forward(
                                out: dp.pointer, input: x.pointer, weight: w.pointer, rows: n, inFeatures: i,
                                outFeatures: o, accumulate: accumulate)
                            QuantizedLinear.forward(
                                out: yp.pointer, input: x.pointer, weight: m, rows: n, accumulate: accumulate)
                        }
                        let differing = (0..<(n * o)).filter { yp.pointer[$0].bitPattern != dp.pointer[$0].bitPattern }
                        #expect(
                            differing.isEmpty,
                            Comment(
                                rawValue:
                                    "\(what) path \(path): \(differing.count) outputs differ from the fp32 tile,"
                                    + " first at"
                                    + " \(differing.first ?? -1)")
                        )
                    }
                    let (want, scale) = reference(x: x, w: w, y0: y0, rows: n, out: o, in: i, accumulate: accumulate)
                    expectClose(y.pointer, want.pointer, scale: scale, what)
                    let xt = FloatBuffer(count: i * 16), panels = m.decodePanels!, count = (o + 15) / 16
                    for path in KernelDispatch.availablePaths {
                        y.pointer.update(from: y0.pointer, count: n * o)
                        rk_set_thread_path(path.rawValue)
                        rk_pack_rows_t16(xt.pointer, x.pointer, i, n, i)
                        for (lo, hi) in [(0, count / 2), (count / 2, count)] {
                            rk_qpanels_gemm_t16(
                                y.pointer, o, xt.pointer, panels, type.rawValue, o, n, lo, hi, i, accumulate ? 1 : 0,
                                nil, 0)
                        }
                        rk_set_thread_path(-1)
                        expectClose(y.pointer, want.pointer, scale: scale, what + " panels path \(path)")
                        // The single-row panel product (batch-1 decoding on the AVX2 and AVX-512 paths) on input row 0.
                        y.pointer.update(from: y0.pointer, count: n * o)
                        rk_set_thread_path(path.rawValue)
                        var sums = [Float](repeating: .nan, count: i / 32)
                        rk_block_sums(&sums, x.pointer, i)
                        for (lo, hi) in [(0, count / 2), (count / 2, count)] {
                            rk_qpanels_gemv(
                                y.pointer, x.pointer, sums, panels, type.rawValue, o, lo, hi, i, accumulate ? 1 : 0)
                        }
                        rk_set_thread_path(-1)
                        expectClose(
                            y.pointer, want.pointer, scale: Array(scale[0..<o]),
                            what + " single-row panels path \(path)")
                    }
                }
                // As many bytes as the blocks, per row rounded up to whole panels of 16.
                #expect(
                    m.hasDecodePanels && m.byteCount == blockBytes + (o + 15) / 16 * 16 * m.rowBytes,
                    "byteCount \(m.byteCount)")
            }
        }
    }

    /// 17–`panelRowsLimit` rows (short prefills): on the AVX-512 path the panels' 16-row kernel over row blocks,
    /// so each row's outputs are bit for bit those of a 12–16-row call holding that row (whatever the batch);
    /// on every path, against the dequantised reference, and the panels are built only where that path reads them.
    @Test(arguments: [17, 29, 40, QuantizedLinear.panelRowsLimit, QuantizedLinear.panelRowsLimit + 1])
    func shortPrefillsReadThePanelsOnAVX512(rows n: Int) {
        let i = 96, o = 53
        for type in [QuantizedType.q4_1, .q8_0] {
            let q = HandQuantized(type, rows: o, columns: i, seed: UInt64(n * 13))
            var r = Rand(UInt64(n * 17))
            let x = r.buffer(n * i), y0 = r.buffer(n * o)
            for map in [nil, permutation(o, seed: 7)] {
                let w = q.logical(rowMap: map)
                for path in KernelDispatch.availablePaths {
                    let m = q.matrix(rowMap: map)  // a fresh copy: no panels yet
                    let what = "\(type) M \(n) map \(map != nil) path \(path)"
                    let y = FloatBuffer(count: n * o)
                    y.pointer.update(from: y0.pointer, count: n * o)
                    KernelDispatch.withPath(path) {
                        QuantizedLinear.forward(out: y.pointer, input: x.pointer, weight: m, rows: n, accumulate: true)
                    }
                    let (want, scale) = reference(x: x, w: w, y0: y0, rows: n, out: o, in: i, accumulate: true)
                    expectClose(y.pointer, want.pointer, scale: scale, what)
                    let panelled = path == .avx512 && n <= QuantizedLinear.panelRowsLimit
                    #expect(m.hasDecodePanels == panelled, "\(what): panels built \(m.hasDecodePanels)")
                    guard panelled else { continue }
                    // Each 16-row block (a short tail: the last 12 rows) as a call of its own.
                    for start in stride(from: 0, to: n, by: 16) {
                        let lo = n - start >= 12 ? start : n - 12, hi = min(start + 16, n)
                        let part = FloatBuffer(count: (hi - lo) * o)
                        part.pointer.update(from: y0.pointer + lo * o, count: (hi - lo) * o)
                        KernelDispatch.withPath(path) {
                            QuantizedLinear.forward(
                                out: part.pointer, input: x.pointer + lo * i, weight: m, rows: hi - lo, accumulate: true
                            )
                        }
                        let differing = (0..<((hi - lo) * o)).filter {
                            part.pointer[$0].bitPattern != y.pointer[lo * o + $0].bitPattern
                        }
                        #expect(
                            differing.isEmpty,
                            Comment(rawValue: "\(what) rows \(lo)..<\(hi): \(differing.count) outputs differ"))
                    }
                }
            }
        }
    }

    /// forwardGroup gives each product's `forward` output bit for bit: one pass at 12–16 rows over dense and
    /// panelled weights, the products in turn otherwise (other row counts, a BF16 member).
    @Test(arguments: [16, 12, 5, 40])
    func groupedProductsEqualSeparateOnes(rows n: Int) {
        let i = 96, outs = [45, 16, 33]
        var r = Rand(UInt64(n))
        let x = r.buffer(n * i)
        let denseWeights = outs.map { r.buffer($0 * i) }
        let q41 = outs.enumerated().map { j, o in
            HandQuantized(.q4_1, rows: o, columns: i, seed: UInt64(40 + j)).matrix(rowMap: nil)
        }
        let q80 = HandQuantized(.q8_0, rows: outs[1], columns: i, seed: 50).matrix(
            rowMap: permutation(outs[1], seed: 5))
        let bf16 = QuantizedMatrix(bf16From: denseWeights[2].pointer, rows: outs[2], columns: i)
        let groups: [(String, [WeightMatrix])] = [
            ("dense", denseWeights.map { .dense($0.pointer) }),
            ("q4_1 + q8_0", [.quantized(q41[0]), .quantized(q80), .quantized(q41[2])]),
            ("with bf16", [.dense(denseWeights[0].pointer), .quantized(q41[1]), .quantized(bf16)]),
        ]
        for (name, weights) in groups {
            withExtendedLifetime(denseWeights) {  // .dense holds only pointers
                let separate = outs.map { FloatBuffer(count: n * $0) },
                    grouped = outs.map { FloatBuffer(count: n * $0) }
                for (j, w) in weights.enumerated() {
                    w.forward(out: separate[j].pointer, input: x.pointer, rows: n, inFeatures: i, outFeatures: outs[j])
                }
                WeightMatrix.forwardGroup(
                    weights.indices.map {
                        WeightMatrix.GroupProduct(weight: weights[$0], out: grouped[$0].pointer, outFeatures: outs[$0])
                    },
                    input: x.pointer, rows: n, inFeatures: i)
                for j in outs.indices {
                    let differing = (0..<(n * outs[j])).filter {
                        grouped[j].pointer[$0].bitPattern != separate[j].pointer[$0].bitPattern
                    }
                    #expect(
                        differing.isEmpty,
                        Comment(
                            rawValue: "\(name) rows \(n) product \(j): \(differing.count) outputs differ, first at"
                                + " \(differing.first ?? -1)")
                    )
                }
            }
        }
    }

    /// A prefetch list handed to grouped panel products (the next layer's KV cache in decoding) only moves
    /// data into cache: same bits with and without it, whatever the list's length against the products' steps.
    @Test func prefetchingLeavesProductsUnchanged() {
        let i = 96, n = 16, outs = [45, 33]
        var r = Rand(9)
        let x = r.buffer(n * i), far = r.buffer(100_000)
        let weights = outs.enumerated().map { j, o in
            WeightMatrix.quantized(HandQuantized(.q4_1, rows: o, columns: i, seed: UInt64(60 + j)).matrix(rowMap: nil))
        }
        func run(_ prefetch: PrefetchList?) -> [[UInt32]] {
            let ys = outs.map { FloatBuffer(count: n * $0) }
            WeightMatrix.forwardGroup(
                outs.indices.map {
                    WeightMatrix.GroupProduct(weight: weights[$0], out: ys[$0].pointer, outFeatures: outs[$0])
                },
                input: x.pointer, rows: n, inFeatures: i, prefetch: prefetch)
            return ys.map { $0.array.map(\.bitPattern) }
        }
        let plain = run(nil)
        for ranges in [
            [(UnsafeRawPointer(far.pointer), 400_000)],
            [(UnsafeRawPointer(far.pointer), 100), (UnsafeRawPointer(far.pointer + 5000), 1)], [],
        ] {
            let list = PrefetchList(capacity: 4)
            list.set(ranges)
            #expect(list.lineCount == ranges.reduce(0) { $0 + ($1.1 + 63) / 64 })
            #expect(run(list) == plain)
        }
    }
}

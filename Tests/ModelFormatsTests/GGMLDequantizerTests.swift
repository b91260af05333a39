// Hand-built ggml blocks for every dequantised type. Each test chooses scales, minimums and
// quantised values, packs them into block bytes following the layout in ggml-common.h, and
// computes the expected weights from the per-weight formula (w = d·q, d·q + m, d·sc·q − dmin·m,
// …) rather than from the kernel's loop structure, so a packing or indexing slip shows up.
import Foundation
import Testing

@testable import ModelFormats

/// Deterministic pseudo-random integers (64-bit LCG, Knuth's constants) for test data.
struct TestLCG {
    var state: UInt64
    mutating func next(_ bound: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(bound))
    }
}

func half(_ x: Float) -> UInt16 { halfBitsFromFloat(x) }
func f16(_ bits: UInt16) -> Float { floatFromHalfBits(bits) }

/// Dequantises `blocks` bytes with the library and returns the floats.
func dequantized(_ type: GGMLType, _ bytes: [UInt8], count: Int) -> [Float] {
    #expect(bytes.count == type.byteCount(forElements: count))
    return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        bytes.withUnsafeBytes {
            GGMLDequantizer.dequantize(
                type, from: $0.baseAddress!, elementCount: count, into: buffer.baseAddress!)
        }
        initialized = count
    }
}

func expectBitwiseEqual(
    _ got: [Float], _ expected: [Float], sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(got.count == expected.count, sourceLocation: sourceLocation)
    let mismatches = zip(got, expected).enumerated().filter {
        $0.element.0.bitPattern != $0.element.1.bitPattern
    }
    #expect(
        mismatches.isEmpty, "first mismatches: \(mismatches.prefix(4))",
        sourceLocation: sourceLocation)
}

@Suite("GGML dequantisation")
struct GGMLDequantizerTests {
    // Scales include a non-power-of-two fp16 value so the fp16 decode is exercised too.
    static let scales: [UInt16] = [half(0.125), 0x3555 /* ≈ 0.33325 */, half(-0.0625)]

    @Test func q8_0() {
        var rng = TestLCG(state: 1)
        var bytes: [UInt8] = []
        var expected: [Float] = []
        for d in Self.scales {
            var b = Bytes()
            b.append(d)
            for _ in 0..<32 {
                let q = Int8(rng.next(256) - 128)
                b.append(q)
                expected.append(Float(q) * f16(d))
            }
            bytes += b.data
        }
        #expect(bytes.count == 3 * 34)
        expectBitwiseEqual(dequantized(.q8_0, bytes, count: 96), expected)
    }

    @Test func q4_0AndQ4_1() {
        var rng = TestLCG(state: 2)
        for type in [GGMLType.q4_0, .q4_1] {
            var bytes: [UInt8] = []
            var expected: [Float] = []
            for d in Self.scales {
                let m = half(-1.5)
                let q = (0..<32).map { _ in UInt8(rng.next(16)) }
                var b = Bytes()
                b.append(d)
                if type == .q4_1 { b.append(m) }
                // Byte j holds weight j in its low nibble and weight j + 16 in its high nibble.
                for j in 0..<16 { b.append(q[j] | (q[j + 16] << 4)) }
                bytes += b.data
                for i in 0..<32 {
                    expected.append(
                        type == .q4_0
                            ? Float(Int(q[i]) - 8) * f16(d) : Float(q[i]) * f16(d) + f16(m))
                }
            }
            expectBitwiseEqual(dequantized(type, bytes, count: 96), expected)
        }
    }

    @Test func q5_0AndQ5_1() {
        var rng = TestLCG(state: 3)
        for type in [GGMLType.q5_0, .q5_1] {
            var bytes: [UInt8] = []
            var expected: [Float] = []
            for d in Self.scales {
                let m = half(0.75)
                let q = (0..<32).map { _ in UInt32(rng.next(32)) }
                var b = Bytes()
                b.append(d)
                if type == .q5_1 { b.append(m) }
                // Bit i of qh is the fifth bit of weight i.
                b.append((0..<32).reduce(UInt32(0)) { $0 | ((q[$1] >> 4) << UInt32($1)) })
                for j in 0..<16 { b.append(UInt8((q[j] & 15) | ((q[j + 16] & 15) << 4))) }
                bytes += b.data
                for i in 0..<32 {
                    expected.append(
                        type == .q5_0
                            ? Float(Int(q[i]) - 16) * f16(d) : Float(q[i]) * f16(d) + f16(m))
                }
            }
            expectBitwiseEqual(dequantized(type, bytes, count: 96), expected)
        }
    }

    /// Packs 8 six-bit scales and mins into the 12-byte K-quant layout: bytes 0–3 hold scales
    /// 0–3 (low 6 bits), bytes 4–7 mins 0–3; bytes 8–11 hold the low nibbles of scale/min 4–7,
    /// whose top two bits go into the top bits of bytes 0–3 (scales) and 4–7 (mins).
    static func packScalesAndMins(_ sc: [UInt8], _ m: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 12)
        for j in 0..<4 {
            out[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6)
            out[j + 4] = (m[j] & 63) | ((m[j + 4] >> 4) << 6)
            out[j + 8] = (sc[j + 4] & 15) | ((m[j + 4] & 15) << 4)
        }
        return out
    }

    @Test func scaleAndMinUnpacking() {
        let sc: [UInt8] = [1, 63, 17, 32, 48, 5, 63, 33]
        let m: [UInt8] = [62, 0, 9, 31, 63, 16, 7, 40]
        let packed = Self.packScalesAndMins(sc, m)
        packed.withUnsafeBufferPointer { p in
            for j in 0..<8 {
                let (s, mm) = GGMLDequantizer.scaleAndMin(p.baseAddress!, j)
                #expect(s == sc[j] && mm == m[j], "sub-block \(j)")
            }
        }
    }

    @Test(arguments: [GGMLType.q4_K, .q5_K])
    func q4_KAndQ5_K(type: GGMLType) {
        var rng = TestLCG(state: type == .q4_K ? 4 : 5)
        let levels = type == .q4_K ? 16 : 32
        var bytes: [UInt8] = []
        var expected: [Float] = []
        for (d, dmin) in [(half(0.125), half(0.0625)), (0x3555, half(0.01)), (half(-2), half(3))] {
            let sc = (0..<8).map { _ in UInt8(rng.next(64)) }
            let m = (0..<8).map { _ in UInt8(rng.next(64)) }
            let q = (0..<256).map { _ in UInt8(rng.next(levels)) }
            var qs = [UInt8](repeating: 0, count: 128)
            var qh = [UInt8](repeating: 0, count: 32)
            for i in 0..<256 {
                // 64-weight chunk c uses qs[32c..<32c+32]: weights 0–31 of the chunk in the low
                // nibbles, 32–63 in the high nibbles; Q5_K's fifth bit is bit 2c (low) or 2c+1
                // (high) of qh[position within the 32].
                let c = i / 64
                let r = i % 64
                let l = r % 32
                let isHigh = r >= 32
                qs[32 * c + l] |= (q[i] & 15) << (isHigh ? 4 : 0)
                qh[l] |= (q[i] >> 4) << (2 * c + (isHigh ? 1 : 0))
            }
            var b = Bytes()
            b.append(d)
            b.append(dmin)
            b.append(raw: Self.packScalesAndMins(sc, m))
            if type == .q5_K { b.append(raw: qh) }
            b.append(raw: qs)
            bytes += b.data
            for i in 0..<256 {
                let s = i / 32  // one scale and min per 32 weights
                expected.append(f16(d) * Float(sc[s]) * Float(q[i]) - f16(dmin) * Float(m[s]))
            }
        }
        #expect(bytes.count == 3 * (type == .q4_K ? 144 : 176))
        expectBitwiseEqual(dequantized(type, bytes, count: 768), expected)
    }

    @Test func q6_K() {
        var rng = TestLCG(state: 6)
        var bytes: [UInt8] = []
        var expected: [Float] = []
        for d in Self.scales {
            let sc = (0..<16).map { _ in Int8(rng.next(256) - 128) }
            let q = (0..<256).map { _ in UInt8(rng.next(64)) }
            var ql = [UInt8](repeating: 0, count: 128)
            var qh = [UInt8](repeating: 0, count: 64)
            for i in 0..<256 {
                // 128-weight half h, quarter k (32 weights), position l: the low 4 bits sit in
                // ql[64h + l + 32(k mod 2)] (low nibble for k < 2, high for k ≥ 2), the high 2 bits
                // in bits 2k…2k+1 of qh[32h + l].
                let h = i / 128
                let k = (i % 128) / 32
                let l = i % 32
                ql[64 * h + l + 32 * (k % 2)] |= (q[i] & 15) << (k >= 2 ? 4 : 0)
                qh[32 * h + l] |= (q[i] >> 4) << (2 * k)
            }
            var b = Bytes()
            b.append(raw: ql)
            b.append(raw: qh)
            for s in sc { b.append(s) }
            b.append(d)
            bytes += b.data
            for i in 0..<256 {
                // One int8 scale per 16 consecutive weights.
                expected.append(f16(d) * Float(sc[i / 16]) * Float(Int(q[i]) - 32))
            }
        }
        #expect(bytes.count == 3 * 210)
        expectBitwiseEqual(dequantized(.q6_K, bytes, count: 768), expected)
    }

    @Test func plainTypes() {
        var b = Bytes()
        for x: Float in [1, -2.5, .infinity] { b.append(x) }
        expectBitwiseEqual(dequantized(.f32, b.data, count: 3), [1, -2.5, .infinity])
        b = Bytes()
        for bits: UInt16 in [0x3C00, 0xC100, 0x0001, 0x7BFF] { b.append(bits) }
        expectBitwiseEqual(dequantized(.f16, b.data, count: 4), [1, -2.5, 0x1p-24, 65504])
        b = Bytes()
        for bits: UInt16 in [0x3F80, 0xC020, 0x4049] { b.append(bits) }
        expectBitwiseEqual(
            dequantized(.bf16, b.data, count: 3), [1, -2.5, Float(bitPattern: 0x4049_0000)])
        b = Bytes()
        b.append(Double(0.1).bitPattern)
        b.append(Int64(-7))
        expectBitwiseEqual(dequantized(.f64, Array(b.data[0..<8]), count: 1), [Float(0.1)])
        expectBitwiseEqual(dequantized(.i64, Array(b.data[8..<16]), count: 1), [-7])
        expectBitwiseEqual(dequantized(.i8, [0xFF, 5], count: 2), [-1, 5])
    }

    @Test func q8_0QuantiserMatchesReferenceFormula() {
        var rng = TestLCG(state: 7)
        let x =
            (0..<64).map { _ in Float(rng.next(20_001) - 10_000) / 3_000 }
            + [Float](repeating: 0, count: 32)
        var blocks = [UInt8](repeating: 0, count: 3 * 34)
        x.withUnsafeBufferPointer { source in
            blocks.withUnsafeMutableBytes {
                GGMLQuantizer.quantizeQ8_0(
                    from: source.baseAddress!, elementCount: 96, into: $0.baseAddress!)
            }
        }
        var expected: [Float] = []
        for block in 0..<3 {
            let values = x[(32 * block)..<(32 * block + 32)]
            let d = values.map(abs).max()! / 127
            let q = values.map {
                Int8((d == 0 ? 0 : $0 * (1 / d)).rounded(.toNearestOrAwayFromZero))
            }
            #expect(
                Array(blocks[(34 * block + 2)..<(34 * block + 34)])
                    == q.map { UInt8(bitPattern: $0) })
            expected += q.map { Float($0) * f16(half(d)) }
        }
        expectBitwiseEqual(dequantized(.q8_0, blocks, count: 96), expected)
    }
}

// Float32 dequantisation of ggml tensor blocks, following the reference scalar kernels in
// ggml-quants.c (`dequantize_row_q4_0`, `_q4_1`, `_q5_0`, `_q5_1`, `_q8_0`, `_q4_K`, `_q5_K`,
// `_q6_K`) and the block layouts of ggml-common.h. Arithmetic is in the same order as those
// kernels and as the `gguf` Python package (no fused multiply-add), so results match them bit for
// bit. Loops walk raw pointers block by block with no allocation, so a frozen quantised base
// model can be dequantised on the fly, a few rows at a time.

/// Dequantisation kernels over raw ggml block bytes.
public enum GGMLDequantizer {
    /// Converts `elementCount` weights of `type`, stored as consecutive blocks at `source`, to
    /// Float32 at `destination`. O(elementCount); allocates nothing.
    ///
    /// - Precondition: `type.isDequantizable` and `elementCount` is a whole number of blocks;
    ///   `source` holds `type.byteCount(forElements: elementCount)` readable bytes (no alignment
    ///   needed) and `destination` room for `elementCount` floats.
    public static func dequantize(
        _ type: GGMLType, from source: UnsafeRawPointer, elementCount: Int,
        into destination: UnsafeMutablePointer<Float>
    ) {
        precondition(
            elementCount >= 0 && elementCount % type.blockSize == 0,
            "\(elementCount) elements is not a whole number of \(type) blocks")
        let blocks = elementCount / type.blockSize
        switch type {
        case .f32:
            UnsafeMutableRawPointer(destination).copyMemory(
                from: source, byteCount: elementCount &* 4)
        case .f16: plain(source, destination, elementCount, UInt16.self) { floatFromHalfBits($0) }
        case .bf16:
            plain(source, destination, elementCount, UInt16.self) { floatFromBFloat16Bits($0) }
        case .f64:
            plain(source, destination, elementCount, UInt64.self) { Float(Double(bitPattern: $0)) }
        case .i8: plain(source, destination, elementCount, Int8.self) { Float($0) }
        case .i16: plain(source, destination, elementCount, Int16.self) { Float($0) }
        case .i32: plain(source, destination, elementCount, Int32.self) { Float($0) }
        case .i64: plain(source, destination, elementCount, Int64.self) { Float($0) }
        case .q4_0: dequantizeQ4_0(source, destination, blocks)
        case .q4_1: dequantizeQ4_1(source, destination, blocks)
        case .q5_0: dequantizeQ5(source, destination, blocks, hasMinimum: false)
        case .q5_1: dequantizeQ5(source, destination, blocks, hasMinimum: true)
        case .q8_0: dequantizeQ8_0(source, destination, blocks)
        case .q4_K: dequantizeQ4_K(source, destination, blocks)
        case .q5_K: dequantizeQ5_K(source, destination, blocks)
        case .q6_K: dequantizeQ6_K(source, destination, blocks)
        default: preconditionFailure("no dequantiser for \(type); check isDequantizable first")
        }
    }

    @inline(__always)
    private static func half(_ pointer: UnsafeRawPointer, _ offset: Int) -> Float {
        floatFromHalfBits(
            UInt16(littleEndian: pointer.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    @inline(__always)
    private static func plain<T: FixedWidthInteger>(
        _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ count: Int,
        _: T.Type, _ transform: (T) -> Float
    ) {
        let stride = MemoryLayout<T>.size
        var i = 0
        while i < count {
            destination[i] = transform(
                T(littleEndian: source.loadUnaligned(fromByteOffset: i &* stride, as: T.self)))
            i &+= 1
        }
    }

    /// block_q4_0 (18 bytes): fp16 d; 16 bytes, low nibbles are weights 0–15, high 16–31.
    /// w = (q − 8)·d.
    private static func dequantizeQ4_0(
        _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ blocks: Int
    ) {
        var block = source
        var out = destination
        for _ in 0..<blocks {
            let d = half(block, 0)
            let qs = (block + 2).assumingMemoryBound(to: UInt8.self)
            var j = 0
            while j < 16 {
                let byte = qs[j]
                out[j] = Float(Int32(byte & 0x0F) &- 8) * d
                out[j &+ 16] = Float(Int32(byte >> 4) &- 8) * d
                j &+= 1
            }
            block += 18
            out += 32
        }
    }

    /// block_q4_1 (20 bytes): fp16 d, fp16 m; 16 bytes of nibbles as in Q4_0. w = q·d + m.
    private static func dequantizeQ4_1(
        _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ blocks: Int
    ) {
        var block = source
        var out = destination
        for _ in 0..<blocks {
            let d = half(block, 0)
            let m = half(block, 2)
            let qs = (block + 4).assumingMemoryBound(to: UInt8.self)
            var j = 0
            while j < 16 {
                let byte = qs[j]
                out[j] = Float(byte & 0x0F) * d + m
                out[j &+ 16] = Float(byte >> 4) * d + m
                j &+= 1
            }
            block += 20
            out += 32
        }
    }

    /// block_q5_0 (22 bytes: fp16 d, u32 qh, 16 bytes) and block_q5_1 (24 bytes: fp16 d, fp16 m,
    /// u32 qh, 16 bytes). Bit j of qh is the fifth bit of weight j. w = (q − 16)·d or q·d + m.
    private static func dequantizeQ5(
        _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ blocks: Int,
        hasMinimum: Bool
    ) {
        let headerSize = hasMinimum ? 4 : 2
        let blockSize = hasMinimum ? 24 : 22
        var block = source
        var out = destination
        for _ in 0..<blocks {
            let d = half(block, 0)
            let m = hasMinimum ? half(block, 2) : 0
            let qh = UInt32(
                littleEndian: block.loadUnaligned(fromByteOffset: headerSize, as: UInt32.self))
            let qs = (block + headerSize + 4).assumingMemoryBound(to: UInt8.self)
            var j = 0
            while j < 16 {
                let byte = UInt32(qs[j])
                let low = (byte & 0x0F) | (((qh >> UInt32(j)) << 4) & 0x10)
                let high = (byte >> 4) | ((qh >> UInt32(j &+ 12)) & 0x10)
                if hasMinimum {
                    out[j] = Float(low) * d + m
                    out[j &+ 16] = Float(high) * d + m
                } else {
                    out[j] = Float(Int32(low) &- 16) * d
                    out[j &+ 16] = Float(Int32(high) &- 16) * d
                }
                j &+= 1
            }
            block += blockSize
            out += 32
        }
    }

    /// block_q8_0 (34 bytes): fp16 d, 32 int8. w = q·d.
    private static func dequantizeQ8_0(
        _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ blocks: Int
    ) {
        var block = source
        var out = destination
        for _ in 0..<blocks {
            let d = half(block, 0)
            let qs = (block + 2).assumingMemoryBound(to: Int8.self)
            var j = 0
            while j < 32 {
                out[j] = Float(qs[j]) * d
                j &+= 1
            }
            block += 34
            out += 32
        }
    }

    /// The 6-bit scale and minimum of sub-block `j` (0..<8) of a Q4_K/Q5_K super-block
    /// (`get_scale_min_k4`): sub-blocks 0–3 use the low 6 bits of bytes j and j+4; 4–7 combine
    /// the nibbles of byte j+4 with the top two bits of bytes j−4 and j.
    @inline(__always)
    static func scaleAndMin(_ scales: UnsafePointer<UInt8>, _ j: Int) -> (UInt8, UInt8) {
        if j < 4 {
            return (scales[j] & 63, scales[j &+ 4] & 63)
        }
        let scale = (scales[j &+ 4] & 0x0F) | ((scales[j &- 4] >> 6) << 4)
        let minimum = (scales[j &+ 4] >> 4) | ((scales[j] >> 6) << 4)
        return (scale, minimum)
    }

    /// block_q4_K (144 bytes): fp16 d, fp16 dmin, 12 bytes of packed 6-bit scales and mins,
    /// 128 bytes of nibbles. Each 64-weight chunk uses 32 bytes: low nibbles are sub-block 2c,
    /// high nibbles sub-block 2c+1. w = d·scale·q − dmin·min.
    private static func dequantizeQ4_K(
        _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ blocks: Int
    ) {
        var block = source
        var out = destination
        for _ in 0..<blocks {
            let d = half(block, 0)
            let dmin = half(block, 2)
            let scales = (block + 4).assumingMemoryBound(to: UInt8.self)
            var qs = (block + 16).assumingMemoryBound(to: UInt8.self)
            var chunk = 0
            while chunk < 4 {
                let (scale1, min1) = scaleAndMin(scales, chunk &* 2)
                let (scale2, min2) = scaleAndMin(scales, chunk &* 2 &+ 1)
                let d1 = d * Float(scale1)
                let m1 = dmin * Float(min1)
                let d2 = d * Float(scale2)
                let m2 = dmin * Float(min2)
                var l = 0
                while l < 32 {
                    let byte = qs[l]
                    out[l] = d1 * Float(byte & 0x0F) - m1
                    out[l &+ 32] = d2 * Float(byte >> 4) - m2
                    l &+= 1
                }
                qs += 32
                out += 64
                chunk &+= 1
            }
            block += 144
        }
    }

    /// block_q5_K (176 bytes): as Q4_K, then 32 bytes qh, then 128 bytes of nibbles. In chunk c,
    /// bit 2c of qh[l] is the fifth bit of the low-nibble weight l, bit 2c+1 of the high one.
    private static func dequantizeQ5_K(
        _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ blocks: Int
    ) {
        var block = source
        var out = destination
        for _ in 0..<blocks {
            let d = half(block, 0)
            let dmin = half(block, 2)
            let scales = (block + 4).assumingMemoryBound(to: UInt8.self)
            let qh = (block + 16).assumingMemoryBound(to: UInt8.self)
            var qs = (block + 48).assumingMemoryBound(to: UInt8.self)
            var chunk = 0
            while chunk < 4 {
                let (scale1, min1) = scaleAndMin(scales, chunk &* 2)
                let (scale2, min2) = scaleAndMin(scales, chunk &* 2 &+ 1)
                let d1 = d * Float(scale1)
                let m1 = dmin * Float(min1)
                let d2 = d * Float(scale2)
                let m2 = dmin * Float(min2)
                let shift = UInt8(chunk &* 2)
                var l = 0
                while l < 32 {
                    let byte = qs[l]
                    let high = qh[l] >> shift
                    out[l] = d1 * Float((byte & 0x0F) | ((high & 1) << 4)) - m1
                    out[l &+ 32] = d2 * Float((byte >> 4) | ((high & 2) << 3)) - m2
                    l &+= 1
                }
                qs += 32
                out += 64
                chunk &+= 1
            }
            block += 176
        }
    }

    /// block_q6_K (210 bytes): 128 bytes ql (low nibbles), 64 bytes qh (2-bit pairs), 16 int8
    /// scales (one per 16 weights), fp16 d. Each 128-weight half uses 64 ql bytes, 32 qh bytes
    /// and 8 scales; weight l + 32k takes nibble (k ≥ 2 ? high : low) of ql[l + 32(k mod 2)]
    /// and bits 2k…2k+1 of qh[l]. w = d·scale·(q − 32).
    private static func dequantizeQ6_K(
        _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ blocks: Int
    ) {
        var block = source
        var out = destination
        for _ in 0..<blocks {
            let d = half(block, 208)
            var ql = block.assumingMemoryBound(to: UInt8.self)
            var qh = (block + 128).assumingMemoryBound(to: UInt8.self)
            var sc = (block + 192).assumingMemoryBound(to: Int8.self)
            var part = 0
            while part < 2 {
                var l = 0
                while l < 32 {
                    let s = l >> 4
                    let h = qh[l]
                    let low = ql[l]
                    let next = ql[l &+ 32]
                    let q1 = Int32((low & 0x0F) | ((h & 3) << 4)) &- 32
                    let q2 = Int32((next & 0x0F) | (((h >> 2) & 3) << 4)) &- 32
                    let q3 = Int32((low >> 4) | (((h >> 4) & 3) << 4)) &- 32
                    let q4 = Int32((next >> 4) | (((h >> 6) & 3) << 4)) &- 32
                    out[l] = d * Float(sc[s]) * Float(q1)
                    out[l &+ 32] = d * Float(sc[s &+ 2]) * Float(q2)
                    out[l &+ 64] = d * Float(sc[s &+ 4]) * Float(q3)
                    out[l &+ 96] = d * Float(sc[s &+ 6]) * Float(q4)
                    l &+= 1
                }
                out += 128
                ql += 64
                qh += 32
                sc += 8
                part &+= 1
            }
            block += 210
        }
    }
}

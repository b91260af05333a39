// Bit-exact conversions between Float32 and the two 16-bit float formats used by model files:
// IEEE binary16 (safetensors F16, ggml GGML_TYPE_F16 and the block scales of every quantised
// ggml type) and bfloat16 (safetensors BF16, GGML_TYPE_BF16). Narrowing rounds to nearest even,
// as F16C's `vcvtps2ph` (ggml) and PyTorch do. The branch-light bit tricks follow Fabian
// Giesen's "half_to_float" / "float_to_half_fast3_rtne" (public domain), so they do not depend
// on `Float16` being available (it is not on macOS/x86_64).

/// Converts IEEE binary16 bits to Float32 exactly (subnormals, infinities and NaNs included).
@inlinable @inline(__always)
public func floatFromHalfBits(_ bits: UInt16) -> Float {
    let shiftedExponent: UInt32 = 0x7C00 << 13
    var out = UInt32(bits & 0x7FFF) << 13
    let exponent = shiftedExponent & out
    out &+= (127 - 15) << 23
    if exponent == shiftedExponent {
        out &+= (128 - 16) << 23  // Inf or NaN: all-ones exponent.
    } else if exponent == 0 {
        // Zero or subnormal: renormalise through a float subtraction.
        out &+= 1 << 23
        out = (Float(bitPattern: out) - Float(bitPattern: 113 << 23)).bitPattern
    }
    return Float(bitPattern: out | (UInt32(bits & 0x8000) << 16))
}

/// Converts Float32 to IEEE binary16 bits, rounding to nearest even; overflow gives ±infinity
/// and NaN gives a quiet NaN.
@inlinable @inline(__always)
public func halfBitsFromFloat(_ value: Float) -> UInt16 {
    let float32Infinity: UInt32 = 255 << 23
    let float16Overflow: UInt32 = (127 + 16) << 23
    let denormalMagic: UInt32 = ((127 - 15) + (23 - 10) + 1) << 23
    var bits = value.bitPattern
    let sign = bits & 0x8000_0000
    bits ^= sign
    var out: UInt32
    if bits >= float16Overflow {
        out = bits > float32Infinity ? 0x7E00 : 0x7C00
    } else if bits < (113 << 23) {
        // Result is subnormal or zero: let the FPU round by adding a magic number.
        let sum = Float(bitPattern: bits) + Float(bitPattern: denormalMagic)
        out = sum.bitPattern &- denormalMagic
    } else {
        let mantissaOdd = (bits >> 13) & 1
        bits &+= ((15 &- 127) << 23) &+ 0xFFF
        bits &+= mantissaOdd
        out = bits >> 13
    }
    return UInt16(truncatingIfNeeded: out | (sign >> 16))
}

/// Converts bfloat16 bits to Float32 exactly.
@inlinable @inline(__always)
public func floatFromBFloat16Bits(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Converts Float32 to bfloat16 bits, rounding to nearest even (NaN stays a quiet NaN), as
/// PyTorch's `round_to_nearest_even` does.
@inlinable @inline(__always)
public func bfloat16BitsFromFloat(_ value: Float) -> UInt16 {
    if value.isNaN { return UInt16(truncatingIfNeeded: (value.bitPattern >> 16) | 0x0040) }
    let bits = value.bitPattern
    let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: rounded >> 16)
}

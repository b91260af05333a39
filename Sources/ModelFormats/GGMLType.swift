// Element types of ggml tensors as numbered in ggml.h (`enum ggml_type`) and stored in GGUF
// tensor infos, with each type's block geometry from ggml-common.h (`block_q4_K` etc.). The
// geometry of every known type is needed to validate a file's tensor layout even when this
// package cannot dequantise that type.

/// A ggml tensor element type. Quantised types pack `blockSize` weights into `blockByteCount`
/// bytes; plain types have a block size of 1.
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q8_1 = 9
    case q2_K = 10
    case q3_K = 11
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case q8_K = 15
    case iq2_XXS = 16
    case iq2_XS = 17
    case iq3_XXS = 18
    case iq1_S = 19
    case iq4_NL = 20
    case iq3_S = 21
    case iq2_S = 22
    case iq4_XS = 23
    case i8 = 24
    case i16 = 25
    case i32 = 26
    case i64 = 27
    case f64 = 28
    case iq1_M = 29
    case bf16 = 30
    case tq1_0 = 34
    case tq2_0 = 35
    case mxfp4 = 39

    /// Weights per block (`ggml_blck_size`).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_NL, .mxfp4: 32
        default: 256
        }
    }

    /// Bytes per block (`ggml_type_size`).
    public var blockByteCount: Int {
        switch self {
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .f64, .i64: 8
        case .i8: 1
        case .q4_0, .iq4_NL: 18  // fp16 d, 16 bytes of nibbles
        case .q4_1: 20  // fp16 d, fp16 m, 16 bytes of nibbles
        case .q5_0: 22  // fp16 d, 4 bytes of high bits, 16 bytes of nibbles
        case .q5_1: 24  // fp16 d, fp16 m, 4 bytes of high bits, 16 bytes of nibbles
        case .q8_0: 34  // fp16 d, 32 int8
        case .q8_1: 36  // fp16 d, fp16 s, 32 int8
        case .mxfp4: 17  // e8m0 exponent, 16 bytes of nibbles
        case .q2_K: 84
        case .q3_K: 110
        case .q4_K: 144  // fp16 d, fp16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
        case .q5_K: 176  // as Q4_K plus 32 bytes of high bits
        case .q6_K: 210  // 128 low nibbles, 64 bytes of high 2-bit pairs, 16 int8 scales, fp16 d
        case .q8_K: 292  // f32 d, 256 int8, 16 int16 block sums
        case .iq2_XXS: 66
        case .iq2_XS: 74
        case .iq3_XXS: 98
        case .iq1_S: 50
        case .iq3_S: 110
        case .iq2_S: 82
        case .iq4_XS: 136
        case .iq1_M: 56
        case .tq1_0: 54
        case .tq2_0: 66
        }
    }

    /// Whether ``GGMLDequantizer`` can convert this type to Float32.
    public var isDequantizable: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0,
            .q4_K, .q5_K, .q6_K:
            true
        default: false
        }
    }

    /// The ggml spelling, e.g. "Q4_K".
    public var description: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q8_1: "Q8_1"
        case .q2_K: "Q2_K"
        case .q3_K: "Q3_K"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        case .q8_K: "Q8_K"
        case .iq2_XXS: "IQ2_XXS"
        case .iq2_XS: "IQ2_XS"
        case .iq3_XXS: "IQ3_XXS"
        case .iq1_S: "IQ1_S"
        case .iq4_NL: "IQ4_NL"
        case .iq3_S: "IQ3_S"
        case .iq2_S: "IQ2_S"
        case .iq4_XS: "IQ4_XS"
        case .i8: "I8"
        case .i16: "I16"
        case .i32: "I32"
        case .i64: "I64"
        case .f64: "F64"
        case .iq1_M: "IQ1_M"
        case .bf16: "BF16"
        case .tq1_0: "TQ1_0"
        case .tq2_0: "TQ2_0"
        case .mxfp4: "MXFP4"
        }
    }

    /// Bytes needed for `elementCount` weights, or nil if it is not a whole number of blocks or
    /// overflows.
    public func byteCount(forElements elementCount: Int) -> Int? {
        guard elementCount >= 0, elementCount % blockSize == 0 else { return nil }
        let (bytes, overflow) = (elementCount / blockSize).multipliedReportingOverflow(
            by: blockByteCount)
        return overflow ? nil : bytes
    }
}

// Metadata values of the GGUF format (ggml docs/gguf.md, `enum gguf_type`): thirteen value
// types including strings and possibly nested arrays, with typed accessors so callers write
// `file.metadata["llama.block_count"]?.int` instead of switching on the storage type.

/// The on-disk type tag of a GGUF metadata value (`gguf_type`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0
    case int8 = 1
    case uint16 = 2
    case int16 = 3
    case uint32 = 4
    case int32 = 5
    case float32 = 6
    case bool = 7
    case string = 8
    case array = 9
    case uint64 = 10
    case int64 = 11
    case float64 = 12

    /// Bytes of a scalar of this type, or nil for strings and arrays.
    var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    /// The fewest bytes one value of this type can occupy (used to bound counts read from a
    /// file before allocating): a string is at least its 8-byte length, an array its 12-byte
    /// element type and count.
    var minimumSize: Int {
        switch self {
        case .string: 8
        case .array: 12
        default: fixedSize!
        }
    }
}

/// A GGUF metadata value.
public indirect enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case uint64(UInt64)
    case int64(Int64)
    case float32(Float)
    case float64(Double)
    case bool(Bool)
    case string(String)
    /// A homogeneous array; `elementType` is kept so empty arrays round-trip.
    case array(elementType: GGUFValueType, [GGUFValue])

    /// The on-disk type tag.
    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .uint64: .uint64
        case .int64: .int64
        case .float32: .float32
        case .float64: .float64
        case .bool: .bool
        case .string: .string
        case .array: .array
        }
    }

    /// The string, if this is a string.
    public var string: String? {
        if case .string(let value) = self { value } else { nil }
    }

    /// Any integer type as `Int`, if it fits.
    public var int: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    /// A float32 or float64 value as `Double` (integers convert too).
    public var double: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: int.map(Double.init)
        }
    }

    /// A float32 or float64 value as `Float` (float32 exactly; integers convert too).
    public var float: Float? {
        if case .float32(let v) = self { return v }
        return double.map(Float.init)
    }

    /// The Boolean, if this is a bool.
    public var bool: Bool? {
        if case .bool(let value) = self { value } else { nil }
    }

    /// The elements, if this is an array.
    public var array: [GGUFValue]? {
        if case .array(_, let values) = self { values } else { nil }
    }

    /// An array of strings (e.g. `tokenizer.ggml.tokens`), or nil if any element is not one.
    public var strings: [String]? { mapElements(\.string) }

    /// An array of numbers as Float (e.g. `tokenizer.ggml.scores`), or nil.
    public var floats: [Float]? { mapElements(\.float) }

    /// An array of integers as Int, or nil if any element is not an integer.
    public var ints: [Int]? { mapElements(\.int) }

    /// An array of int32 (e.g. `tokenizer.ggml.token_type`); other integer types convert when
    /// they fit.
    public var int32s: [Int32]? { mapElements { $0.int.flatMap { Int32(exactly: $0) } } }

    private func mapElements<T>(_ transform: (GGUFValue) -> T?) -> [T]? {
        guard case .array(_, let values) = self else { return nil }
        var out: [T] = []
        out.reserveCapacity(values.count)
        for value in values {
            guard let element = transform(value) else { return nil }
            out.append(element)
        }
        return out
    }
}

extension GGUFValue: CustomStringConvertible {
    /// A short rendering; arrays longer than 8 elements are summarised.
    public var description: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .array(let type, let values):
            "[\(type)] × \(values.count): ["
                + values.prefix(8).map(\.description).joined(separator: ", ")
                + (values.count > 8 ? ", …]" : "]")
        case .uint8(let v): "\(v)"
        case .int8(let v): "\(v)"
        case .uint16(let v): "\(v)"
        case .int16(let v): "\(v)"
        case .uint32(let v): "\(v)"
        case .int32(let v): "\(v)"
        case .uint64(let v): "\(v)"
        case .int64(let v): "\(v)"
        case .float32(let v): "\(v)"
        case .float64(let v): "\(v)"
        case .bool(let v): "\(v)"
        }
    }
}

extension GGUFValue {
    /// An array of strings.
    public static func strings(_ values: [String]) -> GGUFValue {
        .array(elementType: .string, values.map { .string($0) })
    }
    /// An array of float32.
    public static func floats(_ values: [Float]) -> GGUFValue {
        .array(elementType: .float32, values.map { .float32($0) })
    }
    /// An array of int32.
    public static func int32s(_ values: [Int32]) -> GGUFValue {
        .array(elementType: .int32, values.map { .int32($0) })
    }
}

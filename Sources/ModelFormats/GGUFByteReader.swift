// Bounds-checked little-endian cursor over a mapped GGUF file, used by `GGUFFile` to parse the
// header, metadata values and tensor infos. Every read checks the bytes left first and throws
// `ModelFormatError.truncated` naming the field; counts are bounded by the bytes left before
// anything is allocated, as ggml's gguf.cpp does.
import Foundation

struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let url: URL
    private(set) var position = 0

    init(bytes: UnsafeRawBufferPointer, url: URL) {
        self.bytes = bytes
        self.url = url
    }

    var remaining: Int { bytes.count &- position }

    private func need(_ count: Int, _ field: @autoclosure () -> String) throws(ModelFormatError) {
        guard count <= remaining else {
            throw .truncated(file: url, field: field(), needed: count, available: remaining)
        }
    }

    mutating func bytes(_ count: Int, _ field: @autoclosure () -> String) throws(ModelFormatError)
        -> UnsafeRawBufferPointer
    {
        try need(count, field())
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position &+ count)])
        position &+= count
        return slice
    }

    mutating func scalar<T: FixedWidthInteger>(_: T.Type, _ field: @autoclosure () -> String)
        throws(ModelFormatError) -> T
    {
        try need(MemoryLayout<T>.size, field())
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
        position &+= MemoryLayout<T>.size
        return value
    }

    /// A uint64 count of items each at least `minimumSize` bytes long, bounded by the bytes left.
    mutating func count(minimumSize: Int, _ field: @autoclosure () -> String)
        throws(ModelFormatError)
        -> Int
    {
        let raw = try scalar(UInt64.self, field())
        guard raw <= UInt64(remaining / max(1, minimumSize)) else {
            throw .malformed(
                file: url, field: field(),
                expected: "at most \(remaining / max(1, minimumSize)) (what the remaining "
                    + "\(remaining) bytes can hold)", found: "\(raw)")
        }
        return Int(raw)
    }

    /// A GGUF string: uint64 byte length, then that many bytes of UTF-8 (no terminator).
    mutating func string(_ field: @autoclosure () -> String) throws(ModelFormatError) -> String {
        let start = position
        let length = try scalar(UInt64.self, "length of " + field())
        guard length <= UInt64(remaining) else {
            throw .truncated(
                file: url, field: field() + " (string at byte \(start))",
                needed: Int(clamping: length), available: remaining)
        }
        let raw = try bytes(Int(length), field())
        guard let string = String(validating: raw, as: UTF8.self) else {
            throw .malformed(
                file: url, field: field() + " (string at byte \(start))",
                expected: "valid UTF-8", found: "invalid UTF-8 bytes")
        }
        return string
    }

    /// A metadata value of type tag `rawType`.
    mutating func value(_ rawType: UInt32, key: String, depth: Int) throws(ModelFormatError)
        -> GGUFValue
    {
        guard let type = GGUFValueType(rawValue: rawType) else {
            throw .malformed(
                file: url, field: "type of metadata '\(key)'", expected: "a gguf_type in 0...12",
                found: "\(rawType)")
        }
        switch type {
        case .uint8: return .uint8(try scalar(UInt8.self, "metadata '\(key)'"))
        case .int8: return .int8(try scalar(Int8.self, "metadata '\(key)'"))
        case .uint16: return .uint16(try scalar(UInt16.self, "metadata '\(key)'"))
        case .int16: return .int16(try scalar(Int16.self, "metadata '\(key)'"))
        case .uint32: return .uint32(try scalar(UInt32.self, "metadata '\(key)'"))
        case .int32: return .int32(try scalar(Int32.self, "metadata '\(key)'"))
        case .uint64: return .uint64(try scalar(UInt64.self, "metadata '\(key)'"))
        case .int64: return .int64(try scalar(Int64.self, "metadata '\(key)'"))
        case .float32:
            return .float32(Float(bitPattern: try scalar(UInt32.self, "metadata '\(key)'")))
        case .float64:
            return .float64(Double(bitPattern: try scalar(UInt64.self, "metadata '\(key)'")))
        case .bool:
            let byte = try scalar(UInt8.self, "metadata '\(key)'")
            guard byte <= 1 else {
                throw .malformed(
                    file: url, field: "metadata '\(key)'", expected: "a bool (0 or 1)",
                    found: "\(byte)")
            }
            return .bool(byte == 1)
        case .string: return .string(try string("metadata '\(key)'"))
        case .array:
            guard depth < GGUFFile.maximumArrayDepth else {
                throw .malformed(
                    file: url, field: "metadata '\(key)'",
                    expected: "arrays nested at most \(GGUFFile.maximumArrayDepth) deep",
                    found: "deeper nesting")
            }
            let rawElementType = try scalar(UInt32.self, "element type of metadata '\(key)'")
            guard let elementType = GGUFValueType(rawValue: rawElementType) else {
                throw .malformed(
                    file: url, field: "element type of metadata '\(key)'",
                    expected: "a gguf_type in 0...12", found: "\(rawElementType)")
            }
            let count = try self.count(
                minimumSize: elementType.minimumSize, "element count of metadata '\(key)'")
            var values: [GGUFValue] = []
            values.reserveCapacity(count)
            for _ in 0..<count {
                values.append(try value(rawElementType, key: key, depth: depth &+ 1))
            }
            return .array(elementType: elementType, values)
        }
    }

    /// One tensor info: name, n_dims, dims, ggml type, offset (relative to the data section).
    mutating func tensorInfo(number: Int, alignment: Int) throws(ModelFormatError) -> GGUFTensorInfo {
        let name = try string("name of tensor \(number)")
        let dimensionCount = try scalar(UInt32.self, "n_dims of tensor '\(name)'")
        guard (1...4).contains(dimensionCount) else {
            throw .malformed(
                file: url, field: "n_dims of tensor '\(name)'", expected: "1...4 (GGML_MAX_DIMS)",
                found: "\(dimensionCount)")
        }
        var dimensions: [Int] = []
        var elements = 1
        for axis in 0..<Int(dimensionCount) {
            let raw = try scalar(UInt64.self, "ne[\(axis)] of tensor '\(name)'")
            let (product, overflow) = elements.multipliedReportingOverflow(
                by: Int(clamping: raw))
            guard raw <= UInt64(Int64.max), !overflow else {
                throw .malformed(
                    file: url, field: "dimensions of tensor '\(name)'",
                    expected: "an element count that fits in 63 bits",
                    found: "\(dimensions.map(String.init) + [String(raw)])")
            }
            dimensions.append(Int(raw))
            elements = product
        }
        let rawType = try scalar(UInt32.self, "type of tensor '\(name)'")
        guard let type = GGMLType(rawValue: rawType) else {
            throw .unknownType(file: url, tensor: name, type: "ggml type \(rawType)")
        }
        let rawOffset = try scalar(UInt64.self, "offset of tensor '\(name)'")
        guard dimensions[0] % type.blockSize == 0,
            let byteCount = type.byteCount(forElements: elements)
        else {
            throw .malformed(
                file: url, field: "ne[0] of tensor '\(name)'",
                expected: "a multiple of the \(type) block size \(type.blockSize)",
                found: "\(dimensions[0])")
        }
        guard rawOffset <= UInt64(bytes.count), Int(rawOffset) % alignment == 0 else {
            throw .malformed(
                file: url, field: "offset of tensor '\(name)'",
                expected: "a multiple of \(alignment) inside the file (\(bytes.count) bytes)",
                found: "\(rawOffset)")
        }
        return GGUFTensorInfo(
            name: name, dimensions: dimensions, type: type, offset: Int(rawOffset),
            byteCount: byteCount)
    }
}

// Reader for the safetensors format (Hugging Face, github.com/huggingface/safetensors): an
// 8-byte little-endian header length N, N bytes of JSON mapping tensor names to
// {dtype, shape, data_offsets} (plus an optional "__metadata__" string map), then the raw
// little-endian tensor bytes. The file is memory-mapped and validated as the reference
// implementation's `Metadata::validate` does: header within the file, known dtypes, offsets
// inside the data section, no overlaps and byte sizes equal to shape × dtype size.
import Foundation

/// An element type of a safetensors tensor, spelled as in the JSON header.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8E5M2 = "F8_E5M2"
    case f8E4M3 = "F8_E4M3"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8E5M2, .f8E4M3: 1
        case .i16, .u16, .f16, .bf16: 2
        case .i32, .u32, .f32: 4
        case .f64, .i64, .u64: 8
        }
    }
}

/// Name, element type, shape and byte range (relative to the data section) of one tensor.
public struct SafeTensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    /// Row-major shape, outermost dimension first (PyTorch order).
    public let shape: [Int]
    /// Byte range inside the data section that follows the header.
    public let dataOffsets: Range<Int>
    /// Product of `shape` (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A memory-mapped, validated safetensors file.
///
/// ```swift
/// let file = try SafeTensorsFile(contentsOf: url)
/// for name in file.names { print(name, try file.info(name).shape) }
/// let embeddings = try file.floats("model.embed_tokens.weight")
/// ```
///
/// See Also: ``SafeTensorsWriter``, https://huggingface.co/docs/safetensors
public final class SafeTensorsFile: Sendable {
    /// Headers larger than this are rejected, as the reference implementation does.
    public static let maximumHeaderSize = 100_000_000

    public let url: URL
    /// The optional `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// All tensors, in file order (ascending data offset, which is header order for files written
    /// by the reference implementation).
    public let tensors: [SafeTensorsTensorInfo]
    private let indexByName: [String: Int]
    private let file: MappedFile
    private let dataStart: Int

    /// Tensor names in file order.
    public var names: [String] { tensors.map(\.name) }

    /// Maps and validates the file. O(header size + tensor count · log tensor count).
    /// - Throws: ``ModelFormatError`` naming the file and the field or tensor at fault.
    public init(contentsOf url: URL) throws {
        let file = try MappedFile(url: url)
        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw ModelFormatError.truncated(
                file: url, field: "the 8-byte header length", needed: 8, available: bytes.count)
        }
        let headerLength64 = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        let available = bytes.count - 8
        guard headerLength64 <= UInt64(available) else {
            throw ModelFormatError.truncated(
                file: url, field: "the JSON header (length field \(headerLength64))",
                needed: Int(clamping: headerLength64), available: available)
        }
        let headerLength = Int(headerLength64)
        guard headerLength <= Self.maximumHeaderSize else {
            throw ModelFormatError.malformed(
                file: url, field: "header length",
                expected: "at most \(Self.maximumHeaderSize) bytes", found: "\(headerLength)")
        }
        guard headerLength >= 2, bytes[8] == UInt8(ascii: "{") else {
            throw ModelFormatError.malformed(
                file: url, field: "JSON header", expected: "a JSON object starting with '{'",
                found: headerLength < 2 ? "\(headerLength) bytes" : "first byte \(bytes[8])")
        }
        let headerData = Data(bytes[8..<(8 + headerLength)])
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: headerData, options: [])
        } catch {
            throw ModelFormatError.malformed(
                file: url, field: "JSON header", expected: "valid JSON",
                found: "a parse error (\(error.localizedDescription))")
        }
        guard let header = parsed as? [String: Any] else {
            throw ModelFormatError.malformed(
                file: url, field: "JSON header", expected: "a JSON object",
                found: "\(type(of: parsed))")
        }
        var metadata: [String: String] = [:]
        if let raw = header["__metadata__"] {
            guard let map = raw as? [String: String] else {
                throw ModelFormatError.malformed(
                    file: url, field: "__metadata__", expected: "an object of string values",
                    found: String(describing: raw).prefix(80).description)
            }
            metadata = map
        }
        let dataSize = available - headerLength
        var infos: [SafeTensorsTensorInfo] = []
        infos.reserveCapacity(header.count)
        for (name, entry) in header where name != "__metadata__" {
            infos.append(
                try Self.parseEntry(name: name, entry: entry, dataSize: dataSize, url: url))
        }
        infos.sort { ($0.dataOffsets.lowerBound, $0.name) < ($1.dataOffsets.lowerBound, $1.name) }
        var previous: SafeTensorsTensorInfo?
        for info in infos {
            if let previous, info.dataOffsets.lowerBound < previous.dataOffsets.upperBound {
                throw ModelFormatError.malformed(
                    file: url, field: "data_offsets of tensor '\(info.name)'",
                    expected: "a range not overlapping '\(previous.name)' "
                        + "(\(previous.dataOffsets))",
                    found: "\(info.dataOffsets.lowerBound)..<\(info.dataOffsets.upperBound)")
            }
            previous = info
        }
        var index: [String: Int] = [:]
        for (i, info) in infos.enumerated() { index[info.name] = i }
        self.url = url
        self.file = file
        self.metadata = metadata
        self.tensors = infos
        self.indexByName = index
        self.dataStart = 8 + headerLength
    }

    private static func parseEntry(name: String, entry: Any, dataSize: Int, url: URL) throws
        -> SafeTensorsTensorInfo
    {
        func bad(_ field: String, _ expected: String, _ found: Any?) -> ModelFormatError {
            .malformed(
                file: url, field: "\(field) of tensor '\(name)'", expected: expected,
                found: found.map { String(String(describing: $0).prefix(80)) } ?? "nothing")
        }
        guard let object = entry as? [String: Any] else {
            throw bad("entry", "an object {dtype, shape, data_offsets}", entry)
        }
        guard let dtypeName = object["dtype"] as? String else {
            throw bad("dtype", "a string such as \"F32\"", object["dtype"])
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw ModelFormatError.unknownType(file: url, tensor: name, type: "\"\(dtypeName)\"")
        }
        guard let rawShape = object["shape"] as? [Any], rawShape.count <= 64 else {
            throw bad("shape", "an array of at most 64 non-negative integers", object["shape"])
        }
        var shape: [Int] = []
        var elements = 1
        var overflow = false
        for dimension in rawShape {
            guard let value = dimension as? Int, value >= 0 else {
                throw bad("shape", "non-negative integers", rawShape)
            }
            shape.append(value)
            (elements, overflow) = elements.multipliedReportingOverflow(by: value)
            if overflow { throw bad("shape", "an element count that fits in memory", rawShape) }
        }
        guard let offsets = object["data_offsets"] as? [Any], offsets.count == 2,
            let begin = offsets[0] as? Int, let end = offsets[1] as? Int
        else {
            throw bad("data_offsets", "[begin, end] integers", object["data_offsets"])
        }
        guard begin >= 0, begin <= end, end <= dataSize else {
            throw bad(
                "data_offsets", "0 ≤ begin ≤ end ≤ \(dataSize) (the data section size)",
                "[\(begin), \(end)]")
        }
        let (byteCount, byteOverflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !byteOverflow, end - begin == byteCount else {
            throw bad(
                "data_offsets",
                "\(byteOverflow ? "?" : String(byteCount)) bytes for shape "
                    + "\(shape) of \(dtype.rawValue)", "\(end - begin) bytes")
        }
        return SafeTensorsTensorInfo(
            name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    /// Whether a tensor of that name exists.
    public func contains(_ name: String) -> Bool { indexByName[name] != nil }

    /// Element type, shape and byte range of a tensor.
    /// - Throws: ``ModelFormatError/missingTensor(file:name:)``.
    public func info(_ name: String) throws -> SafeTensorsTensorInfo {
        guard let i = indexByName[name] else {
            throw ModelFormatError.missingTensor(file: url, name: name)
        }
        return tensors[i]
    }

    /// Calls `body` with the tensor's raw little-endian bytes (valid only inside `body`).
    public func withRawBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R)
        throws -> R
    {
        let info = try info(name)
        let start = file.bytes.baseAddress.map { $0 + dataStart + info.dataOffsets.lowerBound }
        return try body(UnsafeRawBufferPointer(start: start, count: info.dataOffsets.count))
    }

    /// The tensor's values converted to Float32, row-major. O(elements).
    ///
    /// F32 is copied bit for bit; F16, BF16, F64 and the integer types are converted exactly
    /// where Float32 can represent the value (F64 and 64-bit integers round to nearest).
    /// - Throws: ``ModelFormatError`` if the tensor is missing or of an FP8 type.
    public func floats(_ name: String) throws -> [Float] {
        let info = try info(name)
        let count = info.elementCount
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress { try convert(info, into: base) }
            initialized = count
        }
    }

    /// Converts the tensor to Float32 straight into `destination`, which must hold exactly
    /// `count` = element count floats. O(elements), no allocation.
    public func copyFloats(
        _ name: String, into destination: UnsafeMutablePointer<Float>, count: Int
    )
        throws
    {
        let info = try info(name)
        guard count == info.elementCount else {
            throw ModelFormatError.countMismatch(
                file: url, tensor: name, expected: info.elementCount, found: count)
        }
        try convert(info, into: destination)
    }

    private func convert(
        _ info: SafeTensorsTensorInfo, into destination: UnsafeMutablePointer<Float>
    )
        throws
    {
        let count = info.elementCount
        guard count > 0, let base = file.bytes.baseAddress else { return }
        let source = UnsafeRawPointer(base + dataStart + info.dataOffsets.lowerBound)
        switch info.dtype {
        case .f32:
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count &* 4)
        case .f16:
            convertElements(source, destination, count, UInt16.self) {
                floatFromHalfBits(UInt16(littleEndian: $0))
            }
        case .bf16:
            convertElements(source, destination, count, UInt16.self) {
                floatFromBFloat16Bits(UInt16(littleEndian: $0))
            }
        case .f64:
            convertElements(source, destination, count, UInt64.self) {
                Float(Double(bitPattern: UInt64(littleEndian: $0)))
            }
        case .i64:
            convertElements(source, destination, count, Int64.self) {
                Float(Int64(littleEndian: $0))
            }
        case .u64:
            convertElements(source, destination, count, UInt64.self) {
                Float(UInt64(littleEndian: $0))
            }
        case .i32:
            convertElements(source, destination, count, Int32.self) {
                Float(Int32(littleEndian: $0))
            }
        case .u32:
            convertElements(source, destination, count, UInt32.self) {
                Float(UInt32(littleEndian: $0))
            }
        case .i16:
            convertElements(source, destination, count, Int16.self) {
                Float(Int16(littleEndian: $0))
            }
        case .u16:
            convertElements(source, destination, count, UInt16.self) {
                Float(UInt16(littleEndian: $0))
            }
        case .i8: convertElements(source, destination, count, Int8.self) { Float($0) }
        case .u8: convertElements(source, destination, count, UInt8.self) { Float($0) }
        case .bool: convertElements(source, destination, count, UInt8.self) { $0 == 0 ? 0 : 1 }
        case .f8E5M2, .f8E4M3:
            throw ModelFormatError.unsupportedConversion(
                file: url, tensor: info.name, type: info.dtype.rawValue)
        }
    }
}

/// Reads `count` possibly unaligned elements of type `T` and writes `transform` of each.
@inline(__always)
private func convertElements<T: BitwiseCopyable>(
    _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ count: Int,
    _: T.Type, _ transform: (T) -> Float
) {
    let stride = MemoryLayout<T>.size
    var i = 0
    while i < count {
        destination[i] = transform(source.loadUnaligned(fromByteOffset: i &* stride, as: T.self))
        i &+= 1
    }
}

// Reader for GGUF v2 and v3 (ggml docs/gguf.md; validation modelled on ggml's gguf.cpp
// `gguf_init_from_file_impl`): magic "GGUF", version, tensor and key-value counts, typed
// metadata, tensor infos (name, ggml dims with ne[0] innermost, type, offset), then the data
// section at the next multiple of `general.alignment` (default 32). The file is memory-mapped;
// every count, length and offset is checked against the file size before it is used, so hostile
// files raise a ``ModelFormatError`` instead of trapping or allocating without bound.
import Foundation

/// Name, ggml dimensions, type and location of one GGUF tensor.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml order: `dimensions[0]` (ne[0]) is the innermost, contiguous dimension, so a PyTorch
    /// [out, in] weight is stored as [in, out].
    public let dimensions: [Int]
    public let type: GGMLType
    /// Byte offset of the tensor's data relative to the start of the data section.
    public let offset: Int
    /// Bytes of tensor data.
    public let byteCount: Int

    /// Row-major (PyTorch) shape: `dimensions` reversed.
    public var shape: [Int] { dimensions.reversed() }
    public var elementCount: Int { dimensions.reduce(1, *) }
    /// Elements per row: ne[0].
    public var rowLength: Int { dimensions.first ?? 1 }
    /// Number of rows when the tensor is viewed as 2-D [rows, ne[0]].
    public var rowCount: Int { dimensions.dropFirst().reduce(1, *) }
    /// Bytes per row (a whole number of blocks).
    public var rowByteCount: Int { rowLength / type.blockSize * type.blockByteCount }
}

/// A memory-mapped, validated GGUF file.
///
/// ```swift
/// let gguf = try GGUFFile(contentsOf: DefaultModelLocation.ggufFile())
/// let layers = gguf.metadata["llama.block_count"]?.int
/// let embeddings = try gguf.floats("token_embd.weight")  // [49152 × 576], row-major
/// ```
///
/// See Also: ``GGUFWriter``, ``GGMLDequantizer``,
/// https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
public final class GGUFFile: Sendable {
    public static let supportedVersions = 2...3
    /// Nesting limit for arrays of arrays (real files use none).
    static let maximumArrayDepth = 8

    public let url: URL
    public let version: Int
    /// Data alignment from `general.alignment` (default 32).
    public let alignment: Int
    /// All metadata values by key.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// Absolute file offset of the data section.
    public let dataOffset: Int
    private let indexByName: [String: Int]
    private let file: MappedFile

    /// Tensor names in file order.
    public var names: [String] { tensors.map(\.name) }

    /// Maps and validates the file. O(header size).
    /// - Throws: ``ModelFormatError`` naming the file and the field, key or tensor at fault.
    public init(contentsOf url: URL) throws {
        let file = try MappedFile(url: url)
        var reader = ByteReader(bytes: file.bytes, url: url)
        let magic = try reader.bytes(4, "the magic number")
        guard magic.elementsEqual("GGUF".utf8) else {
            throw ModelFormatError.malformed(
                file: url, field: "magic number", expected: "\"GGUF\" (47 47 55 46)",
                found: magic.map { String($0, radix: 16) }.joined(separator: " "))
        }
        let version = Int(try reader.scalar(UInt32.self, "the version"))
        guard Self.supportedVersions.contains(version) else {
            throw ModelFormatError.unsupportedVersion(
                file: url, found: version, supported: Self.supportedVersions)
        }
        // Bound both counts by the bytes left: a tensor info takes ≥ 32 bytes, a pair ≥ 13.
        let tensorCount = try reader.count(minimumSize: 32, "tensor count")
        let pairCount = try reader.count(minimumSize: 13, "metadata key-value count")

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        keys.reserveCapacity(pairCount)
        for index in 0..<pairCount {
            let key = try reader.string("key of metadata pair \(index)")
            let rawType = try reader.scalar(UInt32.self, "type of metadata '\(key)'")
            let value = try reader.value(rawType, key: key, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw ModelFormatError.malformed(
                    file: url, field: "metadata key '\(key)'", expected: "unique keys",
                    found: "a duplicate")
            }
            keys.append(key)
        }
        var alignment = 32
        if let value = metadata["general.alignment"] {
            guard case .uint32(let raw) = value, raw > 0, raw & (raw - 1) == 0 else {
                throw ModelFormatError.malformed(
                    file: url, field: "metadata 'general.alignment'",
                    expected: "a uint32 power of two", found: "\(value) (\(value.type))")
            }
            alignment = Int(raw)
        }

        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(tensorCount)
        var index: [String: Int] = [:]
        for i in 0..<tensorCount {
            let info = try reader.tensorInfo(number: i, alignment: alignment)
            guard index.updateValue(i, forKey: info.name) == nil else {
                throw ModelFormatError.malformed(
                    file: url, field: "tensor name '\(info.name)'", expected: "unique names",
                    found: "a duplicate")
            }
            infos.append(info)
        }
        let headerEnd = reader.position
        let dataOffset = (headerEnd + alignment - 1) / alignment * alignment
        let dataSize = max(0, file.bytes.count - dataOffset)
        for info in infos where info.byteCount > 0 {
            guard info.offset <= dataSize, info.byteCount <= dataSize - info.offset else {
                throw ModelFormatError.truncated(
                    file: url,
                    field: "data of tensor '\(info.name)' (offset \(info.offset) in the data "
                        + "section at \(dataOffset))",
                    needed: info.byteCount, available: max(0, dataSize - info.offset))
            }
        }
        // Ties keep file order, so the later of two overlapping tensors is the one reported.
        let byOffset = infos.enumerated().filter { $0.element.byteCount > 0 }
            .sorted { ($0.element.offset, $0.offset) < ($1.element.offset, $1.offset) }
            .map(\.element)
        for (previous, next) in zip(byOffset, byOffset.dropFirst())
        where next.offset < previous.offset + previous.byteCount {
            throw ModelFormatError.malformed(
                file: url, field: "offset of tensor '\(next.name)'",
                expected: "at least \(previous.offset + previous.byteCount) (end of "
                    + "'\(previous.name)')", found: "\(next.offset)")
        }
        self.url = url
        self.file = file
        self.version = version
        self.alignment = alignment
        self.metadata = metadata
        self.metadataKeys = keys
        self.tensors = infos
        self.indexByName = index
        self.dataOffset = dataOffset
    }

    /// Whether a tensor of that name exists.
    public func contains(_ name: String) -> Bool { indexByName[name] != nil }

    /// The tensor's info.
    /// - Throws: ``ModelFormatError/missingTensor(file:name:)``.
    public func info(_ name: String) throws -> GGUFTensorInfo {
        guard let i = indexByName[name] else {
            throw ModelFormatError.missingTensor(file: url, name: name)
        }
        return tensors[i]
    }

    /// The tensor's raw ggml blocks. The pointer stays valid while this `GGUFFile` is alive
    /// (keep a reference, e.g. with `withExtendedLifetime`).
    public func rawBytes(of name: String) throws -> UnsafeRawBufferPointer {
        rawBytes(of: try info(name))
    }

    /// The raw ggml blocks of a tensor of this file (see ``rawBytes(of:)-(String)``).
    public func rawBytes(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let start = file.bytes.baseAddress.map { $0 + dataOffset + tensor.offset }
        return UnsafeRawBufferPointer(
            start: tensor.byteCount > 0 ? start : nil, count: tensor.byteCount)
    }

    /// The whole tensor dequantised to Float32, row-major (`shape` order). O(elements).
    /// - Throws: ``ModelFormatError/unsupportedConversion(file:tensor:type:)`` for types
    ///   ``GGMLDequantizer`` does not handle.
    public func floats(_ name: String) throws -> [Float] {
        let tensor = try info(name)
        let count = tensor.elementCount
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress {
                try dequantizeRows(of: tensor, rows: 0..<tensor.rowCount, into: base)
            }
            initialized = count
        }
    }

    /// Dequantises rows `rows` of a tensor viewed as 2-D [rowCount, rowLength] straight into
    /// `destination`, which needs room for `rows.count · rowLength` floats. O(elements written);
    /// allocates nothing, and is safe to call from several threads at once.
    public func dequantizeRows(
        of name: String, rows: Range<Int>, into destination: UnsafeMutablePointer<Float>
    ) throws {
        try dequantizeRows(of: try info(name), rows: rows, into: destination)
    }

    /// As ``dequantizeRows(of:rows:into:)-(String,_,_)``, for a tensor info of this file (saves
    /// the name lookup in hot loops).
    public func dequantizeRows(
        of tensor: GGUFTensorInfo, rows: Range<Int>, into destination: UnsafeMutablePointer<Float>
    ) throws {
        guard tensor.type.isDequantizable else {
            throw ModelFormatError.unsupportedConversion(
                file: url, tensor: tensor.name, type: tensor.type.description)
        }
        guard rows.lowerBound >= 0, rows.upperBound <= tensor.rowCount else {
            throw ModelFormatError.countMismatch(
                file: url, tensor: tensor.name, expected: tensor.rowCount, found: rows.upperBound)
        }
        guard !rows.isEmpty, let base = rawBytes(of: tensor).baseAddress else { return }
        GGMLDequantizer.dequantize(
            tensor.type, from: base + rows.lowerBound &* tensor.rowByteCount,
            elementCount: rows.count &* tensor.rowLength, into: destination)
    }
}

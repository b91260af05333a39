// Writer for GGUF v3 files (ggml docs/gguf.md, layout as ggml's `gguf_write_to_file`): header,
// metadata, tensor infos, padding to `general.alignment`, then each tensor's data padded to the
// alignment. Tensors are stored as F32, F16, BF16 or Q8_0; Q8_0 is quantised as ggml's
// `quantize_row_q8_0_ref` does (per 32 weights d = max|x|/127, q = round(x/d)). The file is
// written atomically (temporary file, fsync, rename).
import Foundation

/// Writes metadata and Float32 tensors to a GGUF v3 file.
///
/// ```swift
/// try GGUFWriter.write(
///     metadata: [("general.architecture", .string("llama")), ("llama.block_count", .uint32(2))],
///     tensors: [.init(name: "token_embd.weight", dimensions: [64, 256], type: .q8_0, values: e)],
///     to: url)
/// ```
///
/// See Also: ``GGUFFile``, ``GGMLQuantizer``
public enum GGUFWriter {
    /// One tensor to write; its Float32 values are converted to `type` on the way out.
    public struct Tensor {
        public let name: String
        /// ggml order, ne[0] (innermost) first: a PyTorch [out, in] weight is [in, out].
        public let dimensions: [Int]
        /// `.f32`, `.f16`, `.bf16` or `.q8_0` (ne[0] a multiple of 32).
        public let type: GGMLType
        enum Source {
            case values([Float])
            case pointer(UnsafePointer<Float>)
        }
        let source: Source

        /// A tensor held in an array of `dimensions.reduce(1, *)` values, row-major.
        public init(name: String, dimensions: [Int], type: GGMLType = .f32, values: [Float]) {
            self.name = name
            self.dimensions = dimensions
            self.type = type
            self.source = .values(values)
        }

        /// A tensor read from `pointer`, valid for the element count until `write` returns.
        public init(
            name: String, dimensions: [Int], type: GGMLType = .f32,
            pointer: UnsafePointer<Float>
        ) {
            self.name = name
            self.dimensions = dimensions
            self.type = type
            self.source = .pointer(pointer)
        }
    }

    /// Writes a GGUF v3 file atomically. Metadata keeps the given order; `general.alignment` is
    /// added when `alignment` is not the default 32. O(total bytes).
    /// - Throws: ``ModelFormatError/invalidInput(file:field:expected:found:)`` for unsupported
    ///   types, bad dimensions, duplicate names or keys, or arrays whose elements do not match
    ///   their element type; ``ModelFormatError/writeFailed(file:operation:reason:)`` on I/O
    ///   errors.
    public static func write(
        metadata: [(key: String, value: GGUFValue)], tensors: [Tensor], alignment: Int = 32,
        to url: URL
    ) throws {
        guard alignment > 0, alignment & (alignment - 1) == 0, alignment <= Int(UInt32.max) else {
            throw ModelFormatError.invalidInput(
                file: url, field: "alignment", expected: "a power of two", found: "\(alignment)")
        }
        var pairs = metadata
        var keys = Set<String>()
        for (key, value) in pairs {
            guard keys.insert(key).inserted else {
                throw ModelFormatError.invalidInput(
                    file: url, field: "metadata key", expected: "unique keys",
                    found: "'\(key)' twice")
            }
            try validate(value, key: key, url: url)
        }
        if let given = pairs.first(where: { $0.key == "general.alignment" })?.value {
            guard given == .uint32(UInt32(alignment)) else {
                throw ModelFormatError.invalidInput(
                    file: url, field: "metadata 'general.alignment'",
                    expected: "uint32 \(alignment), matching the alignment argument",
                    found: "\(given)")
            }
        } else if alignment != 32 {
            pairs.append((key: "general.alignment", value: .uint32(UInt32(alignment))))
        }

        var names = Set<String>()
        var counts: [Int] = []
        var offsets: [Int] = []
        var offset = 0
        for tensor in tensors {
            guard [.f32, .f16, .bf16, .q8_0].contains(tensor.type) else {
                throw ModelFormatError.invalidInput(
                    file: url, field: "type of '\(tensor.name)'",
                    expected: "F32, F16, BF16 or Q8_0",
                    found: tensor.type.description)
            }
            guard names.insert(tensor.name).inserted else {
                throw ModelFormatError.invalidInput(
                    file: url, field: "tensor name", expected: "unique names",
                    found: "'\(tensor.name)' twice")
            }
            var count = 1
            var valid = (1...4).contains(tensor.dimensions.count)
            for dimension in tensor.dimensions {
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                valid = valid && dimension >= 0 && !overflow
                count = overflow ? 0 : product
            }
            guard valid, let bytes = tensor.type.byteCount(forElements: count),
                tensor.dimensions[0] % tensor.type.blockSize == 0
            else {
                throw ModelFormatError.invalidInput(
                    file: url, field: "dimensions of '\(tensor.name)'",
                    expected: "1 to 4 non-negative dimensions, ne[0] a multiple of "
                        + "\(tensor.type.blockSize) for \(tensor.type)",
                    found: "\(tensor.dimensions)")
            }
            if case .values(let values) = tensor.source, values.count != count {
                throw ModelFormatError.invalidInput(
                    file: url, field: "values of '\(tensor.name)'",
                    expected: "\(count) values for dimensions \(tensor.dimensions)",
                    found: "\(values.count)")
            }
            counts.append(count)
            offsets.append(offset)
            offset += padded(bytes, alignment)
        }

        let writer = try AtomicFileWriter(destination: url)
        try writer.write(Array("GGUF".utf8))
        try writer.writeLittleEndian(UInt32(3))
        try writer.writeLittleEndian(UInt64(tensors.count))
        try writer.writeLittleEndian(UInt64(pairs.count))
        for (key, value) in pairs {
            try writeString(key, to: writer)
            try writer.writeLittleEndian(value.type.rawValue)
            try writeValue(value, to: writer)
        }
        for (i, tensor) in tensors.enumerated() {
            try writeString(tensor.name, to: writer)
            try writer.writeLittleEndian(UInt32(tensor.dimensions.count))
            for dimension in tensor.dimensions { try writer.writeLittleEndian(UInt64(dimension)) }
            try writer.writeLittleEndian(tensor.type.rawValue)
            try writer.writeLittleEndian(UInt64(offsets[i]))
        }
        try writer.writeZeros(padded(writer.offset, alignment) - writer.offset)
        for (i, tensor) in tensors.enumerated() {
            let start = writer.offset
            switch tensor.source {
            case .values(let values):
                try values.withUnsafeBufferPointer { buffer in
                    if let base = buffer.baseAddress {
                        try writeData(base, count: counts[i], type: tensor.type, to: writer)
                    }
                }
            case .pointer(let pointer):
                try writeData(pointer, count: counts[i], type: tensor.type, to: writer)
            }
            let written = writer.offset - start
            try writer.writeZeros(padded(written, alignment) - written)
        }
        try writer.commit()
    }

    private static func padded(_ value: Int, _ alignment: Int) -> Int {
        (value + alignment - 1) / alignment * alignment
    }

    private static func validate(_ value: GGUFValue, key: String, url: URL) throws {
        guard case .array(let elementType, let elements) = value else { return }
        for element in elements {
            guard element.type == elementType else {
                throw ModelFormatError.invalidInput(
                    file: url, field: "metadata '\(key)'",
                    expected: "every element of type \(elementType)", found: "\(element.type)")
            }
            try validate(element, key: key, url: url)
        }
    }

    private static func writeString(_ string: String, to writer: AtomicFileWriter)
        throws(ModelFormatError)
    {
        let bytes = Array(string.utf8)
        try writer.writeLittleEndian(UInt64(bytes.count))
        try writer.write(bytes)
    }

    private static func writeValue(_ value: GGUFValue, to writer: AtomicFileWriter)
        throws(ModelFormatError)
    {
        switch value {
        case .uint8(let v): try writer.writeLittleEndian(v)
        case .int8(let v): try writer.writeLittleEndian(v)
        case .uint16(let v): try writer.writeLittleEndian(v)
        case .int16(let v): try writer.writeLittleEndian(v)
        case .uint32(let v): try writer.writeLittleEndian(v)
        case .int32(let v): try writer.writeLittleEndian(v)
        case .uint64(let v): try writer.writeLittleEndian(v)
        case .int64(let v): try writer.writeLittleEndian(v)
        case .float32(let v): try writer.writeLittleEndian(v.bitPattern)
        case .float64(let v): try writer.writeLittleEndian(v.bitPattern)
        case .bool(let v): try writer.writeLittleEndian(UInt8(v ? 1 : 0))
        case .string(let v): try writeString(v, to: writer)
        case .array(let elementType, let elements):
            try writer.writeLittleEndian(elementType.rawValue)
            try writer.writeLittleEndian(UInt64(elements.count))
            for element in elements { try writeValue(element, to: writer) }
        }
    }

    private static func writeData(
        _ source: UnsafePointer<Float>, count: Int, type: GGMLType, to writer: AtomicFileWriter
    ) throws(ModelFormatError) {
        if type == .f32 {
            try writer.write(UnsafeRawBufferPointer(start: source, count: count &* 4))
            return
        }
        // Convert in chunks of 8192 weights (a whole number of Q8_0 blocks).
        let chunk = 8192
        let scratch = UnsafeMutableRawPointer.allocate(
            byteCount: chunk / 32 * 34 + chunk * 2, alignment: 16)
        defer { scratch.deallocate() }
        var start = 0
        while start < count {
            let n = min(chunk, count &- start)
            let bytes: Int
            switch type {
            case .q8_0:
                GGMLQuantizer.quantizeQ8_0(from: source + start, elementCount: n, into: scratch)
                bytes = n / 32 &* 34
            default:
                let out = scratch.assumingMemoryBound(to: UInt16.self)
                var i = 0
                while i < n {
                    let x = source[start &+ i]
                    out[i] =
                        (type == .f16 ? halfBitsFromFloat(x) : bfloat16BitsFromFloat(x))
                        .littleEndian
                    i &+= 1
                }
                bytes = n &* 2
            }
            try writer.write(UnsafeRawBufferPointer(start: scratch, count: bytes))
            start &+= n
        }
    }
}

/// Quantisation kernels producing ggml blocks.
public enum GGMLQuantizer {
    /// Quantises `elementCount` weights (a multiple of 32) to Q8_0 blocks at `destination`
    /// (34 bytes per 32 weights), as ggml's `quantize_row_q8_0_ref`: d = max|x|/127 stored as
    /// fp16, q = round(x · (1/d)) with ties away from zero. O(elementCount).
    public static func quantizeQ8_0(
        from source: UnsafePointer<Float>, elementCount: Int,
        into destination: UnsafeMutableRawPointer
    ) {
        precondition(
            elementCount % 32 == 0, "Q8_0 needs a multiple of 32 weights, got \(elementCount)")
        var x = source
        var block = destination
        for _ in 0..<(elementCount / 32) {
            var amax: Float = 0
            var j = 0
            while j < 32 {
                amax = max(amax, abs(x[j]))
                j &+= 1
            }
            let d = amax / 127
            let inverse: Float = d != 0 ? 1 / d : 0
            block.storeBytes(of: halfBitsFromFloat(d).littleEndian, as: UInt16.self)
            let qs = (block + 2).assumingMemoryBound(to: Int8.self)
            j = 0
            while j < 32 {
                // Finite inputs give |q| ≤ 127; the clamp only keeps NaN/inf from trapping.
                let q = (x[j] * inverse).rounded()
                qs[j] = q.isNaN ? 0 : Int8(max(-127, min(127, q)))
                j &+= 1
            }
            x += 32
            block += 34
        }
    }
}

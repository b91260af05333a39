// Writer for the safetensors format (Hugging Face, github.com/huggingface/safetensors). It
// follows the reference `serialize`: tensors ordered by dtype (wider first, BF16 before F16)
// then by name, contiguous data offsets, "__metadata__" first, and the JSON header padded with
// spaces so the data section starts on an 8-byte boundary. The file is written atomically.
import Foundation

/// Writes Float32 values to a safetensors file as F32, F16 or BF16.
///
/// ```swift
/// try SafeTensorsWriter.write(
///     tensors: [.init(name: "w", shape: [2, 3], dtype: .bf16, values: w)],
///     metadata: ["format": "pt"], to: url)
/// ```
///
/// See Also: ``SafeTensorsFile``
public enum SafeTensorsWriter {
    /// One tensor to write: its Float32 values are narrowed to `dtype` on the way out.
    public struct Tensor {
        public let name: String
        /// Row-major shape, outermost first.
        public let shape: [Int]
        /// Element type on disk: `.f32`, `.f16` or `.bf16`.
        public let dtype: SafeTensorsDType
        enum Source {
            case values([Float])
            case pointer(UnsafePointer<Float>)
        }
        let source: Source

        /// A tensor whose values are held in an array (`values.count` must equal the shape's
        /// element count).
        public init(name: String, shape: [Int], dtype: SafeTensorsDType = .f32, values: [Float]) {
            self.name = name
            self.shape = shape
            self.dtype = dtype
            self.source = .values(values)
        }

        /// A tensor read from `pointer`, which must stay valid for the shape's element count
        /// until `write` returns (for example a view into a parameter arena).
        public init(
            name: String, shape: [Int], dtype: SafeTensorsDType = .f32,
            pointer: UnsafePointer<Float>
        ) {
            self.name = name
            self.shape = shape
            self.dtype = dtype
            self.source = .pointer(pointer)
        }
    }

    /// Writes `tensors` and `metadata` to `url` atomically (temporary file in the same directory,
    /// fsync, rename), so an interrupted save leaves any previous file intact. O(total bytes).
    /// - Throws: ``ModelFormatError/invalidInput(file:field:expected:found:)`` for unsupported
    ///   dtypes, duplicate names or a value count that does not match the shape, and
    ///   ``ModelFormatError/writeFailed(file:operation:reason:)`` for I/O failures.
    public static func write(tensors: [Tensor], metadata: [String: String] = [:], to url: URL)
        throws
    {
        var seen = Set<String>()
        var counts: [Int] = []
        for tensor in tensors {
            guard [.f32, .f16, .bf16].contains(tensor.dtype) else {
                throw ModelFormatError.invalidInput(
                    file: url, field: "dtype of '\(tensor.name)'", expected: "F32, F16 or BF16",
                    found: tensor.dtype.rawValue)
            }
            guard tensor.name != "__metadata__", seen.insert(tensor.name).inserted else {
                throw ModelFormatError.invalidInput(
                    file: url, field: "tensor name",
                    expected: "unique names other than __metadata__",
                    found: "'\(tensor.name)' twice or reserved")
            }
            var count = 1
            for dimension in tensor.shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                guard dimension >= 0, !overflow else {
                    throw ModelFormatError.invalidInput(
                        file: url, field: "shape of '\(tensor.name)'",
                        expected: "non-negative dimensions", found: "\(tensor.shape)")
                }
                count = product
            }
            if case .values(let values) = tensor.source, values.count != count {
                throw ModelFormatError.invalidInput(
                    file: url, field: "values of '\(tensor.name)'",
                    expected: "\(count) values for shape \(tensor.shape)", found: "\(values.count)")
            }
            counts.append(count)
        }
        let order = tensors.indices.sorted {
            let a = (rank(tensors[$0].dtype), tensors[$0].name)
            let b = (rank(tensors[$1].dtype), tensors[$1].name)
            return a < b
        }
        var json = "{"
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            json += metadata.keys.sorted().map { "\(quoted($0)):\(quoted(metadata[$0]!))" }
                .joined(separator: ",")
            json += "},"
        }
        var offset = 0
        var entries: [String] = []
        for i in order {
            let tensor = tensors[i]
            let end = offset + counts[i] * tensor.dtype.byteSize
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            entries.append(
                "\(quoted(tensor.name)):{\"dtype\":\"\(tensor.dtype.rawValue)\","
                    + "\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        json += entries.joined(separator: ",") + "}"
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }

        let writer = try AtomicFileWriter(destination: url)
        try writer.writeLittleEndian(UInt64(header.count))
        try writer.write(header)
        for i in order {
            let tensor = tensors[i]
            switch tensor.source {
            case .values(let values):
                try values.withUnsafeBufferPointer { buffer in
                    if let base = buffer.baseAddress {
                        try writeElements(base, count: counts[i], as: tensor.dtype, to: writer)
                    }
                }
            case .pointer(let pointer):
                try writeElements(pointer, count: counts[i], as: tensor.dtype, to: writer)
            }
        }
        try writer.commit()
    }

    /// Reference order: wider dtypes first; among 2-byte floats BF16 before F16.
    private static func rank(_ dtype: SafeTensorsDType) -> Int {
        switch dtype {
        case .f32: 0
        case .bf16: 1
        default: 2
        }
    }

    private static func writeElements(
        _ source: UnsafePointer<Float>, count: Int, as dtype: SafeTensorsDType,
        to writer: AtomicFileWriter
    ) throws(ModelFormatError) {
        if dtype == .f32 {
            try writer.write(UnsafeRawBufferPointer(start: source, count: count &* 4))
            return
        }
        let chunk = 1 << 15
        let scratch = UnsafeMutablePointer<UInt16>.allocate(capacity: chunk)
        defer { scratch.deallocate() }
        var start = 0
        while start < count {
            let n = min(chunk, count &- start)
            var i = 0
            if dtype == .f16 {
                while i < n {
                    scratch[i] = halfBitsFromFloat(source[start &+ i]).littleEndian
                    i &+= 1
                }
            } else {
                while i < n {
                    scratch[i] = bfloat16BitsFromFloat(source[start &+ i]).littleEndian
                    i &+= 1
                }
            }
            try writer.write(UnsafeRawBufferPointer(start: scratch, count: n &* 2))
            start &+= n
        }
    }
}

/// A JSON string literal (RFC 8259 escaping; non-ASCII is written as UTF-8).
func quoted(_ string: String) -> String {
    var out = "\""
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            out +=
                "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                + String(scalar.value, radix: 16)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

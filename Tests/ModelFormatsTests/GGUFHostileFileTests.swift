// Hostile GGUF files built byte by byte: each must raise a typed ModelFormatError naming what
// is wrong (file, key or tensor, expectation), and no prefix or byte flip of a valid file may
// crash the reader or make it allocate beyond what the file size justifies.
import Foundation
import Testing

@testable import ModelFormats

struct GGUFBuilder {
    var magic = Array("GGUF".utf8)
    var version: UInt32 = 3
    var tensorCount: UInt64?
    var pairCount: UInt64?
    var pairs: [[UInt8]] = []
    var infos: [[UInt8]] = []
    var data: [UInt8] = []
    var alignment = 32

    static func string(_ s: String) -> [UInt8] { string(bytes: Array(s.utf8)) }
    static func string(bytes: [UInt8], length: UInt64? = nil) -> [UInt8] {
        var b = Bytes()
        b.append(length ?? UInt64(bytes.count))
        b.append(raw: bytes)
        return b.data
    }

    mutating func pair(_ key: String, type: UInt32, _ payload: [UInt8]) {
        var b = Bytes()
        b.append(raw: Self.string(key))
        b.append(type)
        b.append(raw: payload)
        pairs.append(b.data)
    }

    mutating func tensor(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        var b = Bytes()
        b.append(raw: Self.string(name))
        b.append(UInt32(dims.count))
        for d in dims { b.append(d) }
        b.append(type)
        b.append(offset)
        infos.append(b.data)
    }

    func build() -> [UInt8] {
        var b = Bytes()
        b.append(raw: magic)
        b.append(version)
        b.append(tensorCount ?? UInt64(infos.count))
        b.append(pairCount ?? UInt64(pairs.count))
        for p in pairs { b.append(raw: p) }
        for i in infos { b.append(raw: i) }
        while b.data.count % alignment != 0 { b.append(UInt8(0)) }
        b.append(raw: data)
        return b.data
    }

    /// One F32 tensor "w" of 4 weights [1, 2, 3, 4] and one string pair.
    static func valid() -> GGUFBuilder {
        var g = GGUFBuilder()
        g.pair("general.architecture", type: 8, string("llama"))
        g.tensor("w", dims: [4], type: 0, offset: 0)
        var d = Bytes()
        for x: Float in [1, 2, 3, 4] { d.append(x) }
        g.data = d.data
        return g
    }
}

@Suite("GGUF hostile files")
struct GGUFHostileFileTests {
    @Test func handBuiltFileReads() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("ok.gguf")
        var g = GGUFBuilder.valid()
        g.version = 2
        try write(g.build(), to: url)
        let file = try GGUFFile(contentsOf: url)
        #expect(file.version == 2)
        #expect(file.metadata["general.architecture"]?.string == "llama")
        #expect(try file.floats("w") == [1, 2, 3, 4])
    }

    /// Writes `bytes`, opens them and returns the error (recording an issue if none).
    func openError(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws
        -> ModelFormatError?
    {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("hostile.gguf")
        try write(bytes, to: url)
        let error = expectModelFormatError(
            { _ = try GGUFFile(contentsOf: url) }, sourceLocation: sourceLocation)
        if let error {
            #expect(
                error.description.contains("hostile.gguf"), "\(error)",
                sourceLocation: sourceLocation)
        }
        return error
    }

    @Test func rejectsHostileHeaders() throws {
        var g = GGUFBuilder.valid()
        guard case .truncated = try openError(Array("GGU".utf8)) else {
            Issue.record("short magic")
            return
        }
        g.magic = Array("GGML".utf8)
        guard case .malformed(_, let field, _, _) = try openError(g.build()),
            field == "magic number"
        else {
            Issue.record("bad magic")
            return
        }
        for version: UInt32 in [1, 4] {
            g = .valid()
            g.version = version
            guard case .unsupportedVersion(_, Int(version), 2...3) = try openError(g.build()) else {
                Issue.record("version \(version)")
                return
            }
        }
        g = .valid()
        g.tensorCount = 1 << 40
        guard case .malformed(_, "tensor count", _, _) = try openError(g.build()) else {
            Issue.record("tensor count")
            return
        }
        g = .valid()
        g.pairCount = .max
        guard case .malformed(_, "metadata key-value count", _, _) = try openError(g.build()) else {
            Issue.record("kv count")
            return
        }
    }

    @Test func rejectsHostileMetadata() throws {
        func withPair(_ key: String, _ type: UInt32, _ payload: [UInt8]) -> [UInt8] {
            var g = GGUFBuilder.valid()
            g.pair(key, type: type, payload)
            return g.build()
        }
        // String length far beyond EOF.
        guard
            case .truncated(_, let field, _, _) = try openError(
                withPair("k", 8, GGUFBuilder.string(bytes: Array("abc".utf8), length: 1 << 50)))
        else {
            Issue.record("string length")
            return
        }
        #expect(field.contains("metadata 'k'"))
        // Key length beyond EOF.
        var g = GGUFBuilder.valid()
        g.pairs.append(GGUFBuilder.string(bytes: [65], length: 1 << 62))
        guard case .truncated = try openError(g.build()) else {
            Issue.record("key length")
            return
        }
        // Invalid UTF-8 in a value and in a key.
        guard
            case .malformed(_, let utf8Field, "valid UTF-8", _) = try openError(
                withPair("k", 8, GGUFBuilder.string(bytes: [0x61, 0xFF, 0xFE])))
        else {
            Issue.record("utf-8 value")
            return
        }
        #expect(utf8Field.contains("metadata 'k'"))
        g = GGUFBuilder.valid()
        g.pairs.append(GGUFBuilder.string(bytes: [0xC3]) + [8, 0, 0, 0] + GGUFBuilder.string("v"))
        guard case .malformed(_, _, "valid UTF-8", _) = try openError(g.build()) else {
            Issue.record("utf-8 key")
            return
        }
        // Unknown value type, bad bool, absurd array count, unknown element type, deep nesting.
        guard case .malformed = try openError(withPair("k", 99, [0])) else {
            Issue.record("type 99")
            return
        }
        guard case .malformed = try openError(withPair("k", 7, [2])) else {
            Issue.record("bool 2")
            return
        }
        var array = Bytes()
        array.append(UInt32(8))
        array.append(UInt64(1) << 59)
        guard
            case .malformed(_, let countField, _, _) = try openError(withPair("k", 9, array.data)),
            countField.contains("element count")
        else {
            Issue.record("array count")
            return
        }
        guard
            case .malformed = try openError(
                withPair("k", 9, [77, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]))
        else {
            Issue.record("element type")
            return
        }
        var nested = Bytes()
        for _ in 0..<20 {
            nested.append(UInt32(9))
            nested.append(UInt64(1))
        }
        nested.append(UInt32(0))
        nested.append(UInt64(0))
        guard case .malformed(_, _, let depth, _) = try openError(withPair("k", 9, nested.data)),
            depth.contains("nested")
        else {
            Issue.record("nesting")
            return
        }
        // Duplicate key, bad alignment.
        guard
            case .malformed = try openError(
                withPair("general.architecture", 8, GGUFBuilder.string("x")))
        else {
            Issue.record("duplicate key")
            return
        }
        guard
            case .malformed(_, let alignField, _, _) = try openError(
                withPair("general.alignment", 4, [3, 0, 0, 0])),
            alignField.contains("alignment")
        else {
            Issue.record("alignment")
            return
        }
    }

    @Test func rejectsHostileTensorInfos() throws {
        func withTensor(
            _ name: String, dims: [UInt64], type: UInt32, offset: UInt64, data: [UInt8] = []
        )
            -> [UInt8]
        {
            var g = GGUFBuilder.valid()
            g.tensor(name, dims: dims, type: type, offset: offset)
            g.data += data
            return g.build()
        }
        // Unknown ggml type names the tensor and the number.
        let unknown = try openError(withTensor("t", dims: [4], type: 99, offset: 32))
        guard case .unknownType(_, "t", "ggml type 99") = unknown else {
            Issue.record("type 99")
            return
        }
        #expect(unknown!.description.contains("'t'") && unknown!.description.contains("99"))
        guard
            case .malformed(_, "n_dims of tensor 't'", _, _) = try openError(
                withTensor("t", dims: [1, 1, 1, 1, 1], type: 0, offset: 32))
        else {
            Issue.record("n_dims")
            return
        }
        guard
            case .malformed(_, "dimensions of tensor 't'", _, _) = try openError(
                withTensor("t", dims: [1 << 40, 1 << 40], type: 0, offset: 32))
        else {
            Issue.record("dims overflow")
            return
        }
        guard
            case .malformed(_, "ne[0] of tensor 't'", _, _) = try openError(
                withTensor("t", dims: [16], type: 2, offset: 32))
        else {
            Issue.record("partial block")
            return
        }
        guard
            case .malformed(_, "offset of tensor 't'", _, _) = try openError(
                withTensor("t", dims: [4], type: 0, offset: 1 << 60))
        else {
            Issue.record("offset beyond file")
            return
        }
        guard
            case .malformed(_, "offset of tensor 't'", _, _) = try openError(
                withTensor("t", dims: [4], type: 0, offset: 8, data: .init(repeating: 0, count: 64))
            )
        else {
            Issue.record("misaligned")
            return
        }
        guard
            case .truncated(_, let dataField, 4096, _) = try openError(
                withTensor("t", dims: [1024], type: 0, offset: 32))
        else {
            Issue.record("data beyond EOF")
            return
        }
        #expect(dataField.contains("'t'"))
        guard
            case .malformed(_, "offset of tensor 't'", _, _) = try openError(
                withTensor("t", dims: [4], type: 0, offset: 0))
        else {
            Issue.record("overlap")
            return
        }
        guard
            case .malformed(_, "tensor name 'w'", _, _) = try openError(
                withTensor(
                    "w", dims: [4], type: 0, offset: 32, data: .init(repeating: 0, count: 32)))
        else {
            Issue.record("duplicate name")
            return
        }
    }

    @Test func reportsUnsupportedTypesOnConversion() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("q2k.gguf")
        var g = GGUFBuilder.valid()
        g.tensor("q2", dims: [256], type: GGMLType.q2_K.rawValue, offset: 32)
        g.data += .init(repeating: 0, count: 32 + 84)
        try write(g.build(), to: url)
        let file = try GGUFFile(contentsOf: url)
        #expect(try file.rawBytes(of: "q2").count == 84)
        #expect(
            expectModelFormatError { _ = try file.floats("q2") }
                == .unsupportedConversion(file: url, tensor: "q2", type: "Q2_K"))
        #expect(
            expectModelFormatError { _ = try file.floats("nope") }
                == .missingTensor(file: url, name: "nope"))
    }

    /// Every truncation of a valid file short of its last tensor byte must throw; random byte
    /// flips in the header must never crash (throwing or reading are both fine).
    @Test func prefixesAndByteFlipsNeverCrash() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("fuzz.gguf")
        try GGUFWriter.write(
            metadata: [
                ("a", .strings(["x", "yz"])), ("b", .uint32(7)),
                ("c", .array(elementType: .array, [.floats([1])])),
            ],
            tensors: [
                .init(
                    name: "t0", dimensions: [32, 2], type: .q8_0,
                    values: .init(repeating: 0.5, count: 64)),
                .init(name: "t1", dimensions: [3], values: [1, 2, 3]),
            ], to: url)
        let good = try [UInt8](Data(contentsOf: url))
        let parsed = try GGUFFile(contentsOf: url)
        let lastByte = parsed.dataOffset + parsed.tensors.map { $0.offset + $0.byteCount }.max()!
        let target = scratch.file("mutant.gguf")
        for length in 0..<lastByte {
            try write(Array(good.prefix(length)), to: target)
            #expect(throws: ModelFormatError.self, "prefix \(length)") {
                _ = try GGUFFile(contentsOf: target)
            }
        }
        var rng = TestLCG(state: 99)
        for _ in 0..<400 {
            var mutant = good
            for _ in 0..<(1 + rng.next(3)) {
                mutant[rng.next(parsed.dataOffset)] = UInt8(rng.next(256))
            }
            try write(mutant, to: target)
            if let file = try? GGUFFile(contentsOf: target) {
                for tensor in file.tensors where tensor.type.isDequantizable {
                    _ = try file.floats(tensor.name)
                }
            }
        }
    }
}

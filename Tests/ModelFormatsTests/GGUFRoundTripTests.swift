// GGUFWriter → GGUFFile round trips: every metadata type including nested arrays, F32/F16/
// BF16/Q8_0 tensors, non-default alignment and row-range dequantisation; and the writer's
// rejection of inconsistent input without touching the destination.
import Foundation
import Testing

@testable import ModelFormats

@Suite("GGUF round trip")
struct GGUFRoundTripTests {
    static let allValueKinds: [(key: String, value: GGUFValue)] = [
        ("u8", .uint8(200)), ("i8", .int8(-100)), ("u16", .uint16(60_000)),
        ("i16", .int16(-30_000)),
        ("u32", .uint32(4_000_000_000)), ("i32", .int32(-2_000_000_000)),
        ("u64", .uint64(.max)), ("i64", .int64(.min)), ("f32", .float32(3.25)),
        ("f64", .float64(-1e300)),
        ("yes", .bool(true)), ("no", .bool(false)), ("s", .string("héllo ✓ \u{0}")),
        ("empty", .string("")),
        ("tokens", .strings(["<s>", "Ġ t", "日本"])), ("scores", .floats([0.5, -1])),
        ("types", .int32s([1, 3, 6])), ("none", .array(elementType: .uint8, [])),
        (
            "nested",
            .array(
                elementType: .array,
                [
                    .array(elementType: .int16, [.int16(1), .int16(-2)]),
                    .array(elementType: .string, []),
                ])
        ),
    ]

    @Test(arguments: [32, 64])
    func writerRoundTrip(alignment: Int) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("model.gguf")
        var rng = TestLCG(state: 11)
        let a = (0..<(64 * 3)).map { _ in Float(rng.next(2001) - 1000) / 250 }
        let b = (0..<10).map { Float($0) / 3 }
        let c = (0..<(32 * 5)).map { _ in Float(rng.next(2001) - 1000) / 700 }
        try b.withUnsafeBufferPointer { bp in
            try GGUFWriter.write(
                metadata: Self.allValueKinds,
                tensors: [
                    .init(name: "a.f32", dimensions: [64, 3], type: .f32, values: a),
                    .init(name: "b.f16", dimensions: [10], type: .f16, pointer: bp.baseAddress!),
                    .init(name: "c.q8", dimensions: [32, 5], type: .q8_0, values: c),
                    .init(
                        name: "d.bf16", dimensions: [2, 1, 3, 1], type: .bf16,
                        values: a.prefix(6).map { $0 }),
                    .init(name: "e.q8", dimensions: [64, 3], type: .q8_0, values: a),
                ],
                alignment: alignment, to: url)
        }
        let file = try GGUFFile(contentsOf: url)
        #expect(file.version == 3)
        #expect(file.alignment == alignment)
        #expect(file.dataOffset % alignment == 0)
        let expectedKeys =
            Self.allValueKinds.map(\.key) + (alignment == 32 ? [] : ["general.alignment"])
        #expect(file.metadataKeys == expectedKeys)
        for (key, value) in Self.allValueKinds {
            #expect(file.metadata[key] == value, "\(key)")
        }
        #expect(file.metadata["tokens"]?.strings == ["<s>", "Ġ t", "日本"])
        #expect(file.metadata["scores"]?.floats == [0.5, -1])
        #expect(file.metadata["types"]?.int32s == [1, 3, 6])
        #expect(file.metadata["u32"]?.int == 4_000_000_000)
        #expect(file.metadata["u64"]?.int == nil)  // does not fit in Int
        #expect(file.metadata["f32"]?.float == 3.25)
        #expect(file.metadata["s"]?.string == "héllo ✓ \u{0}")
        #expect(file.metadata["yes"]?.bool == true)
        #expect(file.metadata["nested"]?.array?.count == 2)

        #expect(file.names == ["a.f32", "b.f16", "c.q8", "d.bf16", "e.q8"])
        let infoA = try file.info("a.f32")
        #expect(infoA.dimensions == [64, 3] && infoA.shape == [3, 64] && infoA.type == .f32)
        #expect(infoA.rowCount == 3 && infoA.rowLength == 64 && infoA.rowByteCount == 256)
        for tensor in file.tensors { #expect(tensor.offset % alignment == 0) }

        expectBitwiseEqual(try file.floats("a.f32"), a)
        expectBitwiseEqual(try file.floats("b.f16"), b.map { f16(half($0)) })
        expectBitwiseEqual(
            try file.floats("d.bf16"),
            a.prefix(6).map { floatFromBFloat16Bits(bfloat16BitsFromFloat($0)) })
        #expect(try file.info("d.bf16").shape == [1, 3, 1, 2])
        // Q8_0 reads back exactly as quantise → dequantise, and the raw blocks are ggml's.
        for (name, values) in [("c.q8", c), ("e.q8", a)] {
            var blocks = [UInt8](repeating: 0, count: values.count / 32 * 34)
            values.withUnsafeBufferPointer { v in
                blocks.withUnsafeMutableBytes {
                    GGMLQuantizer.quantizeQ8_0(
                        from: v.baseAddress!, elementCount: values.count, into: $0.baseAddress!)
                }
            }
            #expect(Array(try file.rawBytes(of: name)) == blocks)
            let read = try file.floats(name)
            expectBitwiseEqual(read, dequantized(.q8_0, blocks, count: values.count))
            let error = zip(read, values).map { abs($0 - $1) }.max()!
            #expect(error <= values.map(abs).max()! / 127)
        }
        // Row ranges match slices of the whole tensor.
        let whole = try file.floats("e.q8")
        var rows = [Float](repeating: .nan, count: 2 * 64)
        try rows.withUnsafeMutableBufferPointer {
            try file.dequantizeRows(of: "e.q8", rows: 1..<3, into: $0.baseAddress!)
        }
        expectBitwiseEqual(rows, Array(whole[64...]))
        #expect(
            expectModelFormatError {
                try rows.withUnsafeMutableBufferPointer {
                    try file.dequantizeRows(of: "e.q8", rows: 2..<4, into: $0.baseAddress!)
                }
            } == .countMismatch(file: url, tensor: "e.q8", expected: 3, found: 4))
    }

    @Test func writerRejectsBadInput() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("bad.gguf")
        let cases: [(String, () throws -> Void)] = [
            (
                "Q8_0 row of 33",
                {
                    try GGUFWriter.write(
                        metadata: [],
                        tensors: [
                            .init(
                                name: "q", dimensions: [33], type: .q8_0,
                                values: .init(repeating: 1, count: 33))
                        ], to: url)
                }
            ),
            (
                "count mismatch",
                {
                    try GGUFWriter.write(
                        metadata: [], tensors: [.init(name: "q", dimensions: [4, 2], values: [1])],
                        to: url)
                }
            ),
            (
                "Q4_K output",
                {
                    try GGUFWriter.write(
                        metadata: [],
                        tensors: [
                            .init(
                                name: "q", dimensions: [256], type: .q4_K,
                                values: .init(repeating: 1, count: 256))
                        ], to: url)
                }
            ),
            (
                "five dims",
                {
                    try GGUFWriter.write(
                        metadata: [],
                        tensors: [.init(name: "q", dimensions: [1, 1, 1, 1, 1], values: [1])],
                        to: url)
                }
            ),
            (
                "duplicate key",
                {
                    try GGUFWriter.write(
                        metadata: [("k", .bool(true)), ("k", .bool(false))], tensors: [], to: url)
                }
            ),
            (
                "mixed array",
                {
                    try GGUFWriter.write(
                        metadata: [("k", .array(elementType: .int32, [.int32(1), .string("x")]))],
                        tensors: [], to: url)
                }
            ),
            (
                "alignment",
                { try GGUFWriter.write(metadata: [], tensors: [], alignment: 24, to: url) }
            ),
        ]
        for (label, body) in cases {
            let error = expectModelFormatError(body)
            guard case .invalidInput = error else {
                Issue.record("\(label): \(String(describing: error))")
                continue
            }
        }
        #expect(!FileManager.default.fileExists(atPath: url.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).isEmpty)
    }

}

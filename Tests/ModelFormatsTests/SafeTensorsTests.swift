// Tests for SafeTensorsFile and SafeTensorsWriter: the tiny-llama reference checkpoint (names and
// shapes from tiny_llama_golden.json, gradient sums from grads.safetensors), F32/F16/BF16 round
// trips, exact half-precision conversions, atomic replacement, and hostile files that must throw.
import Foundation
import Testing
import _SharedData

@testable import ModelFormats

@Suite("SafeTensors")
struct SafeTensorsTests {
    struct Golden: Decodable {
        struct Parameter: Decodable {
            let name: String
            let shape: [Int]
        }
        let parameters: [Parameter]
        let grad_sums: [String: Double]
    }

    func golden() throws -> Golden {
        let data = try Data(
            contentsOf: TestPaths.tinyLlama.appendingPathComponent("tiny_llama_golden.json"))
        return try JSONDecoder().decode(Golden.self, from: data)
    }

    @Test(SharedData.needs("reference/tiny-llama")) func readsTinyLlamaNamesAndShapes() throws {
        let file = try SafeTensorsFile(
            contentsOf: TestPaths.tinyLlama.appendingPathComponent("model.safetensors"))
        let golden = try golden()
        #expect(Set(file.names) == Set(golden.parameters.map(\.name)))
        #expect(file.names.count == golden.parameters.count)
        #expect(file.metadata == ["format": "pt"])
        for parameter in golden.parameters {
            let info = try file.info(parameter.name)
            #expect(info.dtype == .f32)
            #expect(info.shape == parameter.shape, "\(parameter.name)")
            let values = try file.floats(parameter.name)
            #expect(values.count == parameter.shape.reduce(1, *))
            #expect(values.allSatisfy { $0.isFinite })
        }
        // Names are in data-offset order, which is the header order the reference writes.
        let offsets = file.tensors.map(\.dataOffsets.lowerBound)
        #expect(offsets == offsets.sorted())
        #expect(file.names.first == "model.embed_tokens.weight")
    }

    @Test(SharedData.needs("reference/tiny-llama")) func gradientSumsMatchGolden() throws {
        let file = try SafeTensorsFile(
            contentsOf: TestPaths.tinyLlama.appendingPathComponent("grads.safetensors"))
        let golden = try golden()
        #expect(!golden.grad_sums.isEmpty)
        for (name, expected) in golden.grad_sums {
            let values = try file.floats("grad." + name)
            let sum = values.reduce(0.0) { $0 + Double($1) }
            #expect(
                abs(sum - expected) <= 1e-5 * max(1, abs(expected)),
                "\(name): \(sum) vs \(expected)")
            // The pointer API gives the same bits.
            let copy = UnsafeMutablePointer<Float>.allocate(capacity: values.count)
            defer { copy.deallocate() }
            try file.copyFloats("grad." + name, into: copy, count: values.count)
            #expect(UnsafeBufferPointer(start: copy, count: values.count).elementsEqual(values))
        }
    }

    @Test(arguments: [SafeTensorsDType.f32, .f16, .bf16])
    func roundTrip(dtype: SafeTensorsDType) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("round.safetensors")
        var generator = SystemRandomNumberGenerator()
        let a = (0..<24).map { _ in Float.random(in: -3...3, using: &generator) }
        let b: [Float] = [0, -0.0, 1, -2.5, 65504, 1e-7, 3.14159, .infinity]
        let c = (0..<5).map { Float($0) * 0.1 }
        try c.withUnsafeBufferPointer { cp in
            try SafeTensorsWriter.write(
                tensors: [
                    .init(name: "layer.b", shape: [2, 4], dtype: dtype, values: b),
                    .init(name: "layer.a", shape: [2, 3, 4], dtype: dtype, values: a),
                    .init(
                        name: "c \"quoted\"\n", shape: [5], dtype: dtype, pointer: cp.baseAddress!),
                    .init(name: "scalar", shape: [], dtype: dtype, values: [7]),
                    .init(name: "empty", shape: [0, 3], dtype: dtype, values: []),
                ],
                metadata: ["format": "pt", "note": "ünïcode \"q\""], to: url)
        }
        let file = try SafeTensorsFile(contentsOf: url)
        #expect(file.metadata == ["format": "pt", "note": "ünïcode \"q\""])
        #expect(file.names == ["empty", "c \"quoted\"\n", "layer.a", "layer.b", "scalar"].sorted())
        let narrow: (Float) -> Float = {
            switch dtype {
            case .f16: floatFromHalfBits(halfBitsFromFloat($0))
            case .bf16: floatFromBFloat16Bits(bfloat16BitsFromFloat($0))
            default: $0
            }
        }
        for (name, values, shape) in [
            ("layer.a", a, [2, 3, 4]), ("layer.b", b, [2, 4]), ("c \"quoted\"\n", c, [5]),
            ("scalar", [7], []), ("empty", [], [0, 3]),
        ] as [(String, [Float], [Int])] {
            #expect(try file.info(name).shape == shape)
            #expect(try file.info(name).dtype == dtype)
            let read = try file.floats(name)
            #expect(read.map(\.bitPattern) == values.map { narrow($0).bitPattern }, "\(name)")
        }
        // Header length is a multiple of 8 and padded with spaces.
        let raw = try Data(contentsOf: url)
        let headerLength = raw.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(headerLength % 8 == 0)
        #expect(raw[raw.startIndex + 8] == UInt8(ascii: "{"))
    }

    @Test func writerOrdersByDTypeThenName() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("order.safetensors")
        try SafeTensorsWriter.write(
            tensors: [
                .init(name: "a", shape: [1], dtype: .f16, values: [1]),
                .init(name: "b", shape: [1], dtype: .bf16, values: [1]),
                .init(name: "z", shape: [1], dtype: .f32, values: [1]),
                .init(name: "c", shape: [1], dtype: .f32, values: [1]),
            ], to: url)
        #expect(try SafeTensorsFile(contentsOf: url).names == ["c", "z", "b", "a"])
    }

    @Test func halfConversionsAreExact() {
        #if !(os(macOS) && arch(x86_64))
            for bits in 0...UInt16.max {
                let expected = Float(Float16(bitPattern: bits))
                let got = floatFromHalfBits(bits)
                if expected.isNaN {
                    #expect(got.isNaN)
                } else {
                    #expect(got.bitPattern == expected.bitPattern, "half \(bits)")
                }
            }
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<100_000 {
                let x = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))
                let expected = Float16(x)
                let got = halfBitsFromFloat(x)
                if x.isNaN {
                    #expect(Float16(bitPattern: got).isNaN)
                } else {
                    #expect(got == expected.bitPattern, "float \(x)")
                }
            }
        #endif
        #expect(halfBitsFromFloat(1) == 0x3C00)
        #expect(halfBitsFromFloat(65520) == 0x7C00)  // rounds up to infinity
        #expect(bfloat16BitsFromFloat(1) == 0x3F80)
        // Ties to even: 1 + 2^-8 lies halfway between two bfloat16 values.
        #expect(bfloat16BitsFromFloat(Float(bitPattern: 0x3F80_8000)) == 0x3F80)
        #expect(bfloat16BitsFromFloat(Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(floatFromBFloat16Bits(0xC040) == -3)
    }

    @Test func atomicWriteKeepsOldFileOnFailure() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("keep.safetensors")
        try SafeTensorsWriter.write(
            tensors: [.init(name: "w", shape: [2], values: [1, 2])], to: url)
        // A bad second save (value count mismatch) must throw and leave the first file readable.
        expectModelFormatError {
            try SafeTensorsWriter.write(
                tensors: [.init(name: "w", shape: [3], values: [1, 2])], to: url)
        }
        #expect(try SafeTensorsFile(contentsOf: url).floats("w") == [1, 2])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path)
        #expect(leftovers == ["keep.safetensors"])
    }

    // MARK: - Hostile files

    /// A valid one-tensor file (F32 [2]) whose pieces the hostile tests replace.
    func file(
        header: String, data: [UInt8] = [0, 0, 128, 63, 0, 0, 0, 64], lengthField: UInt64? = nil
    )
        -> [UInt8]
    {
        var bytes = Bytes()
        bytes.append(lengthField ?? UInt64(header.utf8.count))
        bytes.append(utf8: header)
        bytes.append(raw: data)
        return bytes.data
    }

    static let good = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

    @Test func acceptsTheBaseline() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("ok.safetensors")
        try write(file(header: Self.good), to: url)
        #expect(try SafeTensorsFile(contentsOf: url).floats("w") == [1, 2])
    }

    @Test(arguments: [
        ("empty file", [UInt8]()),
        ("short length", [1, 2, 3]),
        ("length beyond EOF", Self.lengthOnly(1 << 40)),
        ("length UInt64.max", Self.lengthOnly(.max)),
    ])
    func rejectsBadLengths(label: String, bytes: [UInt8]) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("bad.safetensors")
        try write(bytes, to: url)
        let error = expectModelFormatError { _ = try SafeTensorsFile(contentsOf: url) }
        guard case .truncated(let file, _, _, _) = error else {
            Issue.record("\(label): \(String(describing: error))")
            return
        }
        #expect(file == url)
        #expect(error!.description.contains("bad.safetensors"))
    }

    static func lengthOnly(_ length: UInt64) -> [UInt8] {
        var bytes = Bytes()
        bytes.append(length)
        bytes.append(utf8: "{}")
        return bytes.data
    }

    @Test(arguments: [
        ("not JSON", #"{"w": nope}"#, "JSON header"),
        ("not an object", #"[1,2]   "#, "JSON header"),
        (
            "offsets out of range", #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#,
            "data_offsets"
        ),
        (
            "offsets reversed", #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
            "data_offsets"
        ),
        (
            "size mismatch", #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            "data_offsets"
        ),
        ("negative dim", #"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, "shape"),
        (
            "huge dims",
            #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, "shape"
        ),
        ("fractional", #"{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, "shape"),
        ("missing dtype", #"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, "dtype"),
        (
            "bad metadata",
            #"{"__metadata__":{"a":1},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            "__metadata__"
        ),
        (
            "overlap",
            #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                + #""v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            "data_offsets"
        ),
    ])
    func rejectsMalformedHeaders(label: String, header: String, field: String) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("bad.safetensors")
        try write(file(header: header), to: url)
        let error = expectModelFormatError { _ = try SafeTensorsFile(contentsOf: url) }
        guard case .malformed(let file, let reported, _, _) = error else {
            Issue.record("\(label): \(String(describing: error))")
            return
        }
        #expect(file == url)
        #expect(reported.contains(field), "\(label): \(reported)")
    }

    @Test func rejectsUnknownDTypeNamingTheTensor() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("bad.safetensors")
        try write(file(header: #"{"w":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}}"#), to: url)
        let error = expectModelFormatError { _ = try SafeTensorsFile(contentsOf: url) }
        #expect(error == .unknownType(file: url, tensor: "w", type: "\"F12\""))
    }

    @Test func reportsMissingTensorsAndWrongCounts() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanUp() }
        let url = scratch.file("ok.safetensors")
        try write(file(header: Self.good), to: url)
        let file = try SafeTensorsFile(contentsOf: url)
        #expect(
            expectModelFormatError { _ = try file.floats("nope") }
                == .missingTensor(file: url, name: "nope"))
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 3)
        defer { buffer.deallocate() }
        #expect(
            expectModelFormatError { try file.copyFloats("w", into: buffer, count: 3) }
                == .countMismatch(file: url, tensor: "w", expected: 2, found: 3))
        #expect(expectModelFormatError { _ = try SafeTensorsFile(contentsOf: scratch.url) } != nil)
        #expect(
            expectModelFormatError { _ = try SafeTensorsFile(contentsOf: scratch.file("absent")) }
                != nil)
    }
}

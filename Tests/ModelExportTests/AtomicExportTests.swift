// A failed export never damages a good one: an error thrown half-way through writing a
// directory leaves the previous export byte-identical and no staging directory behind, and
// unwritable destinations fail with a typed error before anything is written.

import Foundation
import Models
import TensorCore
import Testing

@testable import ModelExport

@Suite struct AtomicExportTests {
    struct Interrupted: Error {}

    static func snapshot(_ dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            out[name] = try Data(contentsOf: dir.appendingPathComponent(name))
        }
        return out
    }

    @Test func errorMidExportLeavesThePreviousExportIntact() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let dir = root.appendingPathComponent("export")
        try HFCheckpoint.save(model: try Tiny.model(), tokenizer: try Tiny.byteTokenizer(), to: dir)
        let before = try Self.snapshot(dir)

        let error = try #require(throws: ExportError.self) {
            try ExportDestination.writeDirectory(
                dir, ownedNames: HFCheckpoint.fileNames, overwrite: false
            ) { staging in
                try ExportDestination.writeFile(
                    Data("{}".utf8), to: staging.appendingPathComponent("config.json"))
                try Data(count: 1000).write(to: staging.appendingPathComponent("model.safetensors"))
                throw Interrupted()
            }
        }
        #expect("\(error)".contains("any previous export there is unchanged"))
        #expect(try Self.snapshot(dir) == before)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: root.path) == ["export"],
            "staging removed")
        #expect(try ModelRegistry.load(dir.path).model.config == Tiny.model().config)
    }

    @Test(arguments: [true, false])
    func replacingSwapsWholeDirectories(allowsExchange: Bool) throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let old = root.appendingPathComponent("export")
        let new = root.appendingPathComponent(".staging")
        try FileManager.default.createDirectory(at: old, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(at: new, withIntermediateDirectories: false)
        try Data("old".utf8).write(to: old.appendingPathComponent("config.json"))
        try Data("new".utf8).write(to: new.appendingPathComponent("model.safetensors"))
        try ExportDestination.install(
            staging: new.path, at: old.path, replacing: true, allowsExchange: allowsExchange)
        try? FileManager.default.removeItem(at: new)  // as writeDirectory's cleanup does
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: old.path) == ["model.safetensors"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path) == ["export"])
    }

    @Test func unwritableDestinationsFailBeforeWriting() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("plain-file")
        try Data("x".utf8).write(to: file)
        let model = try Tiny.model()
        let tokenizer = try Tiny.byteTokenizer()

        // A regular file where a parent directory should be: fails even for root.
        let hf = try #require(throws: ExportError.self) {
            try HFCheckpoint.save(
                model: model, tokenizer: tokenizer, to: file.appendingPathComponent("export"))
        }
        guard case .writeFailed(let path, _, _) = hf else {
            Issue.record("unexpected \(hf)")
            return
        }
        #expect(path == file.appendingPathComponent("export").path)
        #expect(throws: ExportError.self) {
            try GGUFExport.save(
                model: model, tokenizer: tokenizer, type: .f32, name: "x",
                to: file.appendingPathComponent("model.gguf"))
        }
        #expect(
            throws: ExportError.destinationConflict(
                path: file.path, found: "a file", expected: "a directory")
        ) {
            try HFCheckpoint.save(model: model, tokenizer: tokenizer, to: file)
        }
        #expect(try String(contentsOf: file, encoding: .utf8) == "x")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path) == ["plain-file"])
    }

    @Test func failedGGUFExportKeepsTheGoodFile() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let url = root.appendingPathComponent("model.gguf")
        let model = try Tiny.model()
        let tokenizer = try Tiny.byteTokenizer()
        try GGUFExport.save(model: model, tokenizer: tokenizer, type: .q8_0, name: "good", to: url)
        let before = try Data(contentsOf: url)
        var scaled = model.config
        scaled.ropeScaling = RoPEScaling(
            factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 64)
        #expect(throws: ExportError.self) {  // refused before anything is written
            try GGUFExport.save(
                model: LlamaModel(config: scaled, trainable: false), tokenizer: tokenizer,
                type: .f32, name: "bad", to: url)
        }
        #expect(try Data(contentsOf: url) == before)
        // a GGUF is replaced
        try GGUFExport.save(model: model, tokenizer: tokenizer, type: .f16, name: "again", to: url)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path) == ["model.gguf"])
    }
}

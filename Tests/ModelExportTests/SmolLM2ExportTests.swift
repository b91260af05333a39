// Exports of the real default model (SmolLM2-135M-Instruct, dequantised from its Q4_1 GGUF):
// an F32 Hugging Face directory reloads with bit-identical logits and tokenizes the 40 golden
// cases as transformers does; an F16 GGUF reloads with close logits, identical tokenization and
// chat template, and the model/tokenizer metadata of the original GGUF.

import Foundation
import ModelFormats
import Models
import Testing
import Tokenizers
import _SharedData

@testable import ModelExport

@Suite(SharedData.needs("reference/tokenizer_golden.json"), .serialized) struct SmolLM2ExportTests {
    static func goldenCases() throws -> [(text: String, ids: [Int])] {
        let golden = try Shared.json("reference/tokenizer_golden.json")
        return (golden["cases"] as? [[String: Any]] ?? []).map {
            ($0["text"] as? String ?? "", $0["ids"] as? [Int] ?? [])
        }
    }

    @Test func huggingFaceF32RoundTrip() throws {
        let original = try SmolLM2.get()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let template = try #require(original.chatTemplate?.source)
        try HFCheckpoint.save(
            model: original.model, tokenizer: original.tokenizer, chatTemplate: template,
            dtype: .f32, to: dir)

        let loaded = try ModelRegistry.load(dir.path)
        #expect(loaded.model.config == original.model.config)
        let prompt = SmolLM2.prompt(original.tokenizer)
        #expect(prompt.count > 10)
        expectBitIdentical(
            logits(loaded.model, prompt), logits(original.model, prompt), "F32 export's logits")
        #expect(loaded.chatTemplate?.source == template)

        let cases = try Self.goldenCases()
        #expect(cases.count == 40)
        for (text, ids) in cases {
            #expect(loaded.tokenizer.encode(text, parseSpecialTokens: true) == ids, "\(text)")
            #expect(original.tokenizer.encode(text, parseSpecialTokens: true) == ids, "\(text)")
        }
        #expect(loaded.tokenizer.bosTokenID == 1 && loaded.tokenizer.eosTokenID == 2)
        #expect(loaded.tokenizer.padTokenID == 2 && loaded.tokenizer.unknownTokenID == 0)
        let config = try String(
            contentsOf: dir.appendingPathComponent("tokenizer_config.json"), encoding: .utf8)
        #expect(
            config.contains("\"bos_token\": \"<|im_start|>\"")
                && config.contains("\"add_bos_token\": false"))
    }

    @Test func ggufF16RoundTripMatchesTheOriginalFile() throws {
        let original = try SmolLM2.get()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("smollm2-f16.gguf")
        try GGUFExport.save(
            model: original.model, tokenizer: original.tokenizer,
            chatTemplate: original.chatTemplate?.source,
            type: .f16, name: "SmolLM2 135M Instruct", to: url)

        let exported = try GGUFFile(contentsOf: url)
        let source = try GGUFFile(contentsOf: DefaultModelLocation.existingGGUFFile())
        let relevant = source.metadataKeys.filter {
            ($0.hasPrefix("llama.") || $0.hasPrefix("tokenizer.") || $0 == "general.architecture"
                || $0 == "general.quantization_version")
        }
        #expect(relevant.count == 24)
        for key in relevant { #expect(exported.metadata[key] == source.metadata[key], "\(key)") }
        #expect(exported.metadata["general.file_type"] == .uint32(1))
        #expect(Set(exported.names) == Set(source.names))
        for info in source.tensors {
            let mine = try exported.info(info.name)
            #expect(
                mine.dimensions == info.dimensions
                    && mine.type == (info.dimensions.count == 1 ? .f32 : .f16), "\(info.name)")
        }

        let loaded = try ModelRegistry.load(url.path)
        #expect(loaded.model.config == original.model.config)
        #expect(loaded.chatTemplate?.source == original.chatTemplate?.source)
        for (text, ids) in try Self.goldenCases() {
            #expect(loaded.tokenizer.encode(text, parseSpecialTokens: true) == ids)
        }

        // F16 keeps 11 significant bits (relative rounding ≤ 2⁻¹¹ per weight). Measured on this
        // 19-token prompt (logits in −22…36): max |Δlogit| 0.031, mean 0.005, max |Δlog-prob| 0.027,
        // same argmax everywhere. The bound leaves 3× headroom for BLAS summation order.
        let prompt = SmolLM2.prompt(original.tokenizer)
        let a = logits(loaded.model, prompt)
        let b = logits(original.model, prompt)
        let difference = maxAbsDifference(a, b)
        #expect(difference < 0.1, "F16 export: max |Δlogit| = \(difference)")
        let v = original.model.config.vocabularySize
        for row in 0..<prompt.count {
            let x = a[(row * v)..<((row + 1) * v)]
            let y = b[(row * v)..<((row + 1) * v)]
            #expect(
                x.firstIndex(of: x.max()!) == y.firstIndex(of: y.max()!),
                "greedy token at position \(row)")
        }
    }
}

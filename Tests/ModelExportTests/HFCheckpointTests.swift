// Hugging Face directories from the tiny Llama: F32 reloads bit-identically through
// ModelRegistry, BF16 reloads as the bf16-rounded weights, config variants (Qwen2 biases, untied
// head, Llama 3 RoPE scaling) survive, a merged LoRA export matches the adapter-on model, and the
// destination rules hold.

import Foundation
import ModelFormats
import Models
import TensorCore
import Testing
import Tokenizers

@testable import ModelExport

@Suite struct HFCheckpointTests {
    @Test func f32RoundTripIsBitIdentical() throws {
        let model = try Tiny.model()
        let tokenizer = try Tiny.byteTokenizer()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try HFCheckpoint.save(
            model: model, tokenizer: tokenizer, chatTemplate: Tiny.chatTemplate, to: dir)
        #expect(
            Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
                == HFCheckpoint.fileNames)

        let loaded = try ModelRegistry.load(dir.path)
        #expect(loaded.model.config == model.config)
        #expect(differingParameters(loaded.model.weights, model.weights) == [])
        expectBitIdentical(logits(loaded.model, Tiny.prompt), logits(model, Tiny.prompt), "logits")
        for text in Tiny.texts {
            #expect(
                loaded.tokenizer.encode(text, parseSpecialTokens: true)
                    == tokenizer.encode(text, parseSpecialTokens: true))
        }
        #expect(
            loaded.tokenizer.bosTokenID == 1 && loaded.tokenizer.eosTokenID == 2
                && loaded.tokenizer.padTokenID == 0)
        #expect(loaded.chatTemplate?.source == Tiny.chatTemplate)
        let jinja = try String(
            contentsOf: dir.appendingPathComponent("chat_template.jinja"), encoding: .utf8)
        #expect(jinja == Tiny.chatTemplate)

        let config = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as? [String: Any]
        )
        #expect(
            config["model_type"] as? String == "llama"
                && config["architectures"] as? [String] == ["LlamaForCausalLM"])
        #expect(
            config["torch_dtype"] as? String == "float32"
                && config["tie_word_embeddings"] as? Bool == true)
        #expect(
            config["bos_token_id"] as? Int == 1 && config["eos_token_id"] as? Int == 2
                && config["head_dim"] as? Int == 16)
        let weights = try SafeTensorsFile(
            contentsOf: dir.appendingPathComponent("model.safetensors"))
        #expect(!weights.contains("lm_head.weight") && weights.metadata["format"] == "pt")
    }

    @Test func bf16RoundTripGivesTheRoundedWeights() throws {
        let model = try Tiny.model()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try HFCheckpoint.save(
            model: model, tokenizer: try Tiny.byteTokenizer(), dtype: .bf16, to: dir)
        let loaded = try ModelRegistry.load(dir.path)

        let rounded = LlamaModel(config: model.config, trainable: false)
        let count = model.weights.values.count
        for i in 0..<count {
            rounded.weights.values.pointer[i] = floatFromBFloat16Bits(
                bfloat16BitsFromFloat(model.weights.values.pointer[i]))
        }
        #expect(differingParameters(loaded.model.weights, rounded.weights) == [])
        #expect(
            !differingParameters(loaded.model.weights, model.weights).isEmpty,
            "bf16 rounds something")
        expectBitIdentical(
            logits(loaded.model, Tiny.prompt), logits(rounded, Tiny.prompt), "logits")
        let config = try String(
            contentsOf: dir.appendingPathComponent("config.json"), encoding: .utf8)
        #expect(config.contains("\"torch_dtype\": \"bfloat16\""))
    }

    /// Config variants: Qwen2-style biases with an untied head, Llama 3 RoPE scaling, GQA 4:1.
    static let variants: [LlamaConfig] = [
        LlamaConfig(
            vocabularySize: 256, hiddenSize: 48, intermediateSize: 80, layerCount: 2, headCount: 4,
            kvHeadCount: 2,
            rmsNormEpsilon: 1e-6, ropeTheta: 1_000_000, maxPositions: 64, tiesWordEmbeddings: false,
            hasAttentionBias: true, bosTokenID: nil, eosTokenIDs: [2, 3]),
        LlamaConfig(
            vocabularySize: 300, hiddenSize: 64, intermediateSize: 96, layerCount: 1, headCount: 4,
            kvHeadCount: 1,
            headDim: 8, ropeTheta: 500_000,
            ropeScaling: RoPEScaling(
                factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 32),
            maxPositions: 128, bosTokenID: 1, eosTokenIDs: [2]),
    ]

    static func randomModel(_ config: LlamaConfig, seed: UInt64) -> LlamaModel {
        let model = LlamaModel(config: config, trainable: false)
        var rng = RNG(seed: seed)
        rng.fillNormal(model.weights.values.pointer, count: model.weights.values.count, std: 0.2)
        return model
    }

    @Test(arguments: variants.indices)
    func configVariantsRoundTrip(index: Int) throws {
        let model = Self.randomModel(Self.variants[index], seed: UInt64(index + 1))
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try HFCheckpoint.save(model: model, tokenizer: try Tiny.byteTokenizer(), to: dir)
        let loaded = try ModelRegistry.load(dir.path)
        var expected = model.config
        expected.bosTokenID = expected.bosTokenID ?? 1  // filled from the tokenizer
        #expect(loaded.model.config == expected)
        #expect(differingParameters(loaded.model.weights, model.weights) == [])
        expectBitIdentical(logits(loaded.model, Tiny.prompt), logits(model, Tiny.prompt), "logits")
        let config = try String(
            contentsOf: dir.appendingPathComponent("config.json"), encoding: .utf8)
        #expect(
            config.contains(
                model.config.hasAttentionBias
                    ? "\"model_type\": \"qwen2\"" : "\"rope_type\": \"llama3\""))
    }

    @Test func mergedLoRAExportMatchesTheAdapterOnModel() throws {
        let model = try Tiny.model()
        let before = model.weights.values.array
        let adapter = try model.addAdapter(named: "policy", config: LoRAConfig(), seed: 3)
        randomizeB(adapter, seed: 4)
        let adapted = logits(model, Tiny.prompt, adapter: adapter)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }

        try HFCheckpoint.saveMerged(
            model: model, adapter: adapter, tokenizer: try Tiny.byteTokenizer(), to: dir)
        let merged = try ModelRegistry.load(dir.path).model
        let difference = maxAbsDifference(logits(merged, Tiny.prompt), adapted)
        #expect(difference <= 1e-5, "merged vs adapter-on logits differ by \(difference)")
        #expect(
            maxAbsDifference(logits(merged, Tiny.prompt), logits(try Tiny.model(), Tiny.prompt))
                > 1e-3)
        #expect(
            bitIdentical(model.weights.values.array, before),
            "the source model is untouched")

        var other = model.config
        other.layerCount = 1
        #expect(throws: ExportError.self) {
            try LlamaModel(config: other, trainable: false).merged(with: adapter)
        }
    }

    /// A bf16 base (`--bf16`) holds no fp32 weights to write: refused with a message naming bf16 and the flag,
    /// and nothing is created.
    @Test func bf16BaseIsRefused() throws {
        let model = try Tiny.model().withBF16Weights()
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let dir = root.appendingPathComponent("export")
        do {
            try HFCheckpoint.save(model: model, tokenizer: try Tiny.byteTokenizer(), to: dir)
            Issue.record("a bf16 base was exported")
        } catch {
            let text = "\(error)"
            #expect(text.contains("bf16") && text.contains("--bf16"), "\(text)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path))
    }

    @Test func destinationRules() throws {
        let model = try Tiny.model()
        let tokenizer = try Tiny.byteTokenizer()
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let dir = root.appendingPathComponent("nested/export")
        try HFCheckpoint.save(model: model, tokenizer: tokenizer, to: dir)  // creates parents
        // replaces a previous export
        try HFCheckpoint.save(model: model, tokenizer: tokenizer, chatTemplate: "x", to: dir)
        #expect(
            try String(
                contentsOf: dir.appendingPathComponent("chat_template.jinja"), encoding: .utf8)
                == "x")

        try Data().write(to: dir.appendingPathComponent("README.md"))
        let refusal = ExportError.destinationNotEmpty(path: dir.path, unexpected: ["README.md"])
        #expect(throws: refusal) {
            try HFCheckpoint.save(model: model, tokenizer: tokenizer, to: dir)
        }
        try HFCheckpoint.save(model: model, tokenizer: tokenizer, to: dir, overwrite: true)
        #expect(
            !FileManager.default.fileExists(atPath: dir.appendingPathComponent("README.md").path))
        #expect(
            !FileManager.default.fileExists(
                atPath: dir.appendingPathComponent("chat_template.jinja").path))

        let big = LlamaModel(
            config: LlamaConfig(
                vocabularySize: 100, hiddenSize: 16, intermediateSize: 16, layerCount: 1,
                headCount: 2, kvHeadCount: 2), trainable: false)
        #expect(throws: ExportError.vocabularyMismatch(tokenizer: 256, model: 100)) {
            try HFCheckpoint.save(
                model: big, tokenizer: tokenizer, to: root.appendingPathComponent("small"))
        }
        let leftovers = try FileManager.default.contentsOfDirectory(
            atPath: root.appendingPathComponent("nested").path)
        #expect(leftovers == ["export"], "no staging directories are left behind")
    }
}

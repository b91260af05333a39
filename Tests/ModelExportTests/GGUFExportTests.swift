// GGUF exports of the tiny Llama reloaded with LlamaModel.load(gguf:): F32 bit-exact, F16 equal
// to the f16-rounded weights, Q8_0 equal to quantise → dequantise; q/k rows stored in llama.cpp's
// interleaved order; norms F32; Q8_0 falling back to F16 for rows not a multiple of 32; Qwen2
// architecture for biased models; the tokenizer and chat template read back by Tokenizer(gguf:).

import Foundation
import ModelFormats
import Models
import TensorCore
import Testing
import Tokenizers

@testable import ModelExport

@Suite struct GGUFExportTests {
    /// What a weight row reads back as after storing it as `type`.
    static func stored(_ values: [Float], as type: GGMLType) -> [Float] {
        switch type {
        case .f16: return values.map { floatFromHalfBits(halfBitsFromFloat($0)) }
        case .q8_0:
            var blocks = [UInt8](repeating: 0, count: values.count / 32 * 34)
            var out = [Float](repeating: 0, count: values.count)
            values.withUnsafeBufferPointer { v in
                blocks.withUnsafeMutableBytes {
                    GGMLQuantizer.quantizeQ8_0(
                        from: v.baseAddress!, elementCount: v.count, into: $0.baseAddress!)
                }
            }
            blocks.withUnsafeBytes { b in
                out.withUnsafeMutableBufferPointer {
                    GGMLDequantizer.dequantize(
                        .q8_0, from: b.baseAddress!, elementCount: values.count,
                        into: $0.baseAddress!)
                }
            }
            return out
        default: return values
        }
    }

    /// Exports, reloads and checks every weight against `stored(_:as:)` of its storage type.
    static func roundTrip(_ model: LlamaModel, type: GGUFExport.TensorType, tokenizer: Tokenizer)
        throws -> (GGUFFile, LlamaModel)
    {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.gguf")
        try GGUFExport.save(
            model: model, tokenizer: tokenizer, chatTemplate: Tiny.chatTemplate, type: type,
            name: "tiny", to: url)
        let gguf = try GGUFFile(contentsOf: url)
        let reloaded = try LlamaModel.load(gguf: gguf)
        #expect(reloaded.config == model.config)
        let original = parameters(model.weights)
        let restored = parameters(reloaded.weights)
        for e in model.weights.entries {
            let info = try gguf.info(GGUFExport.ggufName(e.name))
            #expect(
                info.type == GGUFExport.storage(shape: e.shape, requested: type), "\(info.name)")
            #expect(info.shape == e.shape)
            expectBitIdentical(
                restored[e.name] ?? [], stored(original[e.name]!, as: info.type),
                "\(e.name) as \(info.type)")
        }
        return (gguf, reloaded)
    }

    @Test(arguments: GGUFExport.TensorType.allCases)
    func tinyLlamaRoundTrip(type: GGUFExport.TensorType) throws {
        let model = try Tiny.model()
        let tokenizer = try Tiny.byteTokenizer()
        let (gguf, reloaded) = try Self.roundTrip(model, type: type, tokenizer: tokenizer)
        #expect(
            gguf.metadata["general.architecture"] == .string("llama")
                && gguf.metadata["general.name"] == .string("tiny"))
        #expect(gguf.metadata["general.file_type"] == .uint32(type.fileType))
        #expect(
            try gguf.info("blk.0.attn_norm.weight").type == .f32 && !gguf.contains("output.weight"))
        if type == .f32 {
            expectBitIdentical(logits(reloaded, Tiny.prompt), logits(model, Tiny.prompt), "logits")
            // Stored q rows are interleaved: row 1 of head 0 is HF row D/2 = 8.
            let q = try gguf.floats("blk.0.attn_q.weight")
            let hf = parameters(model.weights)["model.layers.0.self_attn.q_proj.weight"]!
            #expect(Array(q[64..<128]) == Array(hf[(8 * 64)..<(9 * 64)]))
        }
        let restored = try Tokenizer(gguf: gguf)
        for text in Tiny.texts {
            #expect(
                restored.encode(text, parseSpecialTokens: true)
                    == tokenizer.encode(text, parseSpecialTokens: true))
        }
        #expect(
            restored.chatTemplate == Tiny.chatTemplate && restored.bosTokenID == 1
                && restored.eosTokenID == 2)
    }

    @Test func qwen2UntiedWithOddRowLengths() throws {
        let config = LlamaConfig(
            vocabularySize: 256, hiddenSize: 48, intermediateSize: 64, layerCount: 2, headCount: 4,
            kvHeadCount: 2, rmsNormEpsilon: 1e-6, ropeTheta: 1_000_000, maxPositions: 64,
            tiesWordEmbeddings: false, hasAttentionBias: true, bosTokenID: 1, eosTokenIDs: [2])
        let model = HFCheckpointTests.randomModel(config, seed: 9)
        let (gguf, reloaded) = try Self.roundTrip(
            model, type: .q8_0, tokenizer: try Tiny.byteTokenizer())
        #expect(gguf.metadata["general.architecture"] == .string("qwen2"))
        #expect(gguf.metadata["qwen2.attention.head_count_kv"] == .uint32(2))
        #expect(try gguf.info("blk.0.attn_q.weight").type == .f16, "rows of 48 fall back to F16")
        #expect(try gguf.info("blk.0.ffn_down.weight").type == .q8_0, "rows of 64 are Q8_0")
        #expect(try gguf.info("blk.0.attn_q.bias").type == .f32 && gguf.contains("output.weight"))
        // Qwen2 is not permuted: the stored bias is HF's.
        #expect(
            try gguf.floats("blk.1.attn_k.bias")
                == parameters(model.weights)["model.layers.1.self_attn.k_proj.bias"])
        #expect(reloaded.config.hasAttentionBias && !reloaded.config.tiesWordEmbeddings)
    }

    @Test func smallerTokenizerIsPaddedAndRefusalsAreTyped() throws {
        let model = HFCheckpointTests.randomModel(
            LlamaConfig(
                vocabularySize: 260, hiddenSize: 32, intermediateSize: 32, layerCount: 1,
                headCount: 2, kvHeadCount: 1),
            seed: 5)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("padded.gguf")
        try GGUFExport.save(
            model: model, tokenizer: try Tiny.byteTokenizer(), type: .f32, name: "padded", to: url)
        let gguf = try GGUFFile(contentsOf: url)
        let tokens = try #require(gguf.metadata["tokenizer.ggml.tokens"]?.strings)
        #expect(tokens.count == 260 && tokens[259] == "[PAD259]")
        #expect(gguf.metadata["tokenizer.ggml.token_type"]?.int32s?[258] == 5)

        try Data("not a model".utf8).write(to: url)
        #expect(throws: ExportError.self) {
            try GGUFExport.save(
                model: model, tokenizer: try Tiny.byteTokenizer(), type: .f32, name: "x", to: url)
        }
        #expect(try String(contentsOf: url, encoding: .utf8) == "not a model")
        #expect(
            throws: ExportError.destinationConflict(
                path: dir.path, found: "a directory", expected: "a GGUF file")
        ) {
            try GGUFExport.save(
                model: model, tokenizer: try Tiny.byteTokenizer(), type: .f32, name: "x", to: dir)
        }
        var scaled = model.config
        scaled.ropeScaling = RoPEScaling(
            factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 32)
        #expect(throws: ExportError.self) {
            try GGUFExport.save(
                model: LlamaModel(config: scaled, trainable: false),
                tokenizer: try Tiny.byteTokenizer(),
                type: .f32, name: "x", to: dir.appendingPathComponent("scaled.gguf"))
        }
    }

    /// Metadata claiming 1024 layers of width 65,536 (two hundred terabytes of weights) over a tiny file's tensors:
    /// the loader compares the implied shapes with the file's tensors before allocating anything (found by fuzzing:
    /// a flipped bit in a size field made the loader allocate gigabytes).
    @Test func hostileSizesAreRefusedBeforeAllocating() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tiny.gguf")
        try GGUFExport.save(
            model: try Tiny.model(), tokenizer: try Tiny.byteTokenizer(), type: .f32, name: "t", to: url)
        var bytes = [UInt8](try Data(contentsOf: url))
        func patch(_ key: String, _ value: UInt32) throws {
            let k = Array(key.utf8)
            let at = try #require((0...(bytes.count - k.count)).first { Array(bytes[$0..<($0 + k.count)]) == k })
            #expect(bytes[at + k.count] == 4, "\(key) is a uint32")  // GGUF value type 4 = UINT32
            for i in 0..<4 { bytes[at + k.count + 4 + i] = UInt8((value >> (8 * UInt32(i))) & 0xff) }
        }
        try patch("llama.block_count", 1024)
        try patch("llama.embedding_length", 65_536)
        try patch("llama.feed_forward_length", 262_144)
        try Data(bytes).write(to: url)
        #expect { _ = try LlamaModel.load(gguf: try GGUFFile(contentsOf: url)) } throws: { error in
            guard case ModelError.shapeMismatch = error else { return false }
            return true
        }
        try patch("llama.embedding_length", 1 << 20)
        try Data(bytes).write(to: url)
        #expect { _ = try LlamaModel.load(gguf: try GGUFFile(contentsOf: url)) } throws: {
            "\($0)".contains("hidden_size")
        }
    }

    /// Weights with fewer embedding rows than the tokenizer has tokens (a tokenizer from another model) are refused
    /// at load, in both formats, before a token id past the embedding can reach a kernel.
    @Test func aVocabularySmallerThanTheTokenizersIsRefused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let hf = dir.appendingPathComponent("hf")
        try HFCheckpoint.save(model: try Tiny.model(), tokenizer: try Tiny.byteTokenizer(), to: hf)
        let configURL = hf.appendingPathComponent("config.json")
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        config["vocab_size"] = 200
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        #expect { _ = try ModelRegistry.load(hf.path) } throws: {
            "\($0)".contains("vocab_size") && "\($0)".contains("tokenizer's 256 tokens")
        }
    }

    @Test func mergedLoRAExportMatchesTheAdapterOnModel() throws {
        let model = try Tiny.model()
        let adapter = try model.addAdapter(named: "policy", config: LoRAConfig(), seed: 21)
        randomizeB(adapter, seed: 22)
        let adapted = logits(model, Tiny.prompt, adapter: adapter)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("merged.gguf")
        try GGUFExport.saveMerged(
            model: model, adapter: adapter, tokenizer: try Tiny.byteTokenizer(), type: .f32,
            name: "merged", to: url)
        let merged = try LlamaModel.load(gguf: try GGUFFile(contentsOf: url))
        let difference = maxAbsDifference(logits(merged, Tiny.prompt), adapted)
        #expect(difference <= 1e-5, "merged vs adapter-on logits differ by \(difference)")
    }
}

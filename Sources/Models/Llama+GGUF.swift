// LlamaModel and its tokenizer from a GGUF file (llama.cpp's layout): `<arch>.*` metadata → config,
// `blk.N.*` tensors → HF names, dequantised to Float32. llama.cpp's converter permutes the rows of
// q/k projections of `llama` models for its interleaved RoPE; we undo that so the HF rotate-half
// layout applies (transformers' `reverse_permute` in its GGUF loader). Qwen2 weights are not permuted.

import Foundation
import ModelFormats
import TensorCore
import Tokenizers

extension LlamaConfig {
    /// Reads `general.architecture` and the `<arch>.*` hyper-parameters.
    public init(gguf: GGUFFile) throws {
        let file = gguf.url.path
        guard let arch = gguf.metadata["general.architecture"]?.string else {
            throw ModelError.invalidConfig(
                file: file, field: "general.architecture", value: "missing", expected: "a string")
        }
        guard ["llama", "qwen2", "mistral"].contains(arch) else {
            throw ModelError.unsupportedArchitecture(file: file, found: arch, supported: ["llama", "qwen2", "mistral"])
        }
        func int(_ key: String, default d: Int? = nil) throws -> Int {
            if let v = gguf.metadata["\(arch).\(key)"]?.int { return v }
            if let d { return d }
            throw ModelError.invalidConfig(
                file: file, field: "\(arch).\(key)", value: "missing", expected: "an integer")
        }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        let vocab =
            gguf.metadata["\(arch).vocab_size"]?.int ?? gguf.metadata["tokenizer.ggml.tokens"]?.array?.count ?? 0
        var scaling: RoPEScaling?
        if gguf.metadata["\(arch).rope.scaling.type"]?.string == "llama3"
            || gguf.metadata["\(arch).rope.scaling.factor"] != nil,
            let factor = gguf.metadata["\(arch).rope.scaling.factor"]?.double, factor != 1
        {
            scaling = RoPEScaling(
                factor: factor,
                lowFrequencyFactor: gguf.metadata["\(arch).rope.scaling.low_freq_factor"]?.double ?? 1,
                highFrequencyFactor: gguf.metadata["\(arch).rope.scaling.high_freq_factor"]?.double ?? 4,
                originalMaxPositions: gguf.metadata["\(arch).rope.scaling.original_context_length"]?.int ?? 8192)
        }
        var eos: [Int] = []
        if let e = gguf.metadata["tokenizer.ggml.eos_token_id"]?.int { eos.append(e) }
        if let e = gguf.metadata["tokenizer.ggml.eot_token_id"]?.int, !eos.contains(e) { eos.append(e) }
        self.init(
            vocabularySize: vocab, hiddenSize: hidden, intermediateSize: try int("feed_forward_length"),
            layerCount: try int("block_count"), headCount: heads,
            kvHeadCount: try int("attention.head_count_kv", default: heads),
            headDim: try int(
                "attention.key_length", default: try int("rope.dimension_count", default: hidden / max(heads, 1))),
            rmsNormEpsilon: gguf.metadata["\(arch).attention.layer_norm_rms_epsilon"]?.float ?? 1e-5,
            ropeTheta: gguf.metadata["\(arch).rope.freq_base"]?.double ?? 10_000, ropeScaling: scaling,
            maxPositions: try int("context_length", default: 2048),
            tiesWordEmbeddings: !gguf.contains("output.weight"),
            hasAttentionBias: gguf.contains("blk.0.attn_q.bias"),
            bosTokenID: gguf.metadata["tokenizer.ggml.bos_token_id"]?.int, eosTokenIDs: eos)
        try validate(source: file)
    }
}

extension LlamaModel {
    /// GGUF tensor name for an HF parameter name.
    static func ggufName(_ hf: String) -> String {
        let fixed = [
            "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
            "lm_head.weight": "output.weight",
        ]
        if let f = fixed[hf] { return f }
        let parts = hf.split(separator: ".")  // model.layers.N.<module>.<proj>.<weight|bias>
        let layer = parts[2], rest = parts[3...].joined(separator: ".")
        let map = [
            "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
            "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
            "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
            "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
            "self_attn.v_proj.bias": "attn_v.bias", "mlp.gate_proj.weight": "ffn_gate.weight",
            "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
        ]
        return "blk.\(layer).\(map[rest] ?? rest)"
    }

    /// Loads config and weights from a GGUF file: dequantised to Float32, or — with `keepQuantized`
    /// (frozen base only) — 2-D Q4_1/Q8_0/F16/BF16 weights stay in the memory-mapped file and are
    /// dequantised on the fly (QLoRA-style: ~5× less weight memory, faster bandwidth-bound decoding).
    public static func load(gguf: GGUFFile, trainable: Bool = false, keepQuantized: Bool = false) throws -> LlamaModel {
        let config = try LlamaConfig(gguf: gguf)
        let arch = gguf.metadata["general.architecture"]?.string ?? "llama"
        // Every tensor the config implies is checked against the file before anything is allocated: the
        // reader has bounded each tensor by the file size, so hostile metadata cannot ask for more memory.
        for (name, shape) in layout(config) { _ = try ggufInfo(ggufName(name), shape: shape, in: gguf) }
        var quantized: [String: QuantizedMatrix] = [:]
        if keepQuantized && !trainable {
            for (name, shape) in layout(config) where shape.count == 2 {
                let info = try gguf.info(ggufName(name))
                guard let type = QuantizedType(ggml: info.type.rawValue), info.shape == shape,
                    shape[1] % type.blockSize == 0
                else { continue }
                let heads =
                    name.hasSuffix("q_proj.weight")
                    ? config.headCount : name.hasSuffix("k_proj.weight") ? config.kvHeadCount : 0
                let map =
                    arch == "llama" && heads > 0
                    ? QuantizedMatrix.llamaRoPERowMap(heads: heads, headDim: config.headDim) : nil
                quantized[name] = QuantizedMatrix(
                    type: type, rows: shape[0], columns: shape[1],
                    blocks: try gguf.rawBytes(of: info.name).baseAddress!, owner: gguf, rowMap: map)
            }
        }
        let model = LlamaModel(config: config, trainable: trainable, quantized: quantized)
        let entries = model.weights.entries
        var failure: Error?
        // Dequantising 135 M weights is memory-bound; split tensors across the pool.
        let lock = NSLock()
        parallelFor(entries.count) { range in
            for i in range {
                do { try model.loadGGUFTensor(entries[i], from: gguf, unpermute: arch == "llama") } catch {
                    lock.lock(); failure = failure ?? error; lock.unlock()
                }
            }
        }
        if let failure { throw failure }
        return model
    }

    /// The file's tensor `name`, which must have `shape` (a vector may be stored with any shape of its size).
    static func ggufInfo(_ name: String, shape: [Int], in gguf: GGUFFile) throws -> GGUFTensorInfo {
        guard gguf.contains(name) else { throw ModelError.missingTensor(file: gguf.url.path, name: name) }
        let info = try gguf.info(name)
        guard info.shape == shape || (shape.count == 1 && info.elementCount == shape[0]) else {
            throw ModelError.shapeMismatch(file: gguf.url.path, name: name, expected: shape, found: info.shape)
        }
        return info
    }

    func loadGGUFTensor(_ e: ParameterStore.Entry, from gguf: GGUFFile, unpermute: Bool) throws {
        let name = Self.ggufName(e.name)
        let info = try Self.ggufInfo(name, shape: e.shape, in: gguf)
        let dst = weights.values.pointer + e.offset
        let heads =
            name.hasSuffix("attn_q.weight") || name.hasSuffix("attn_q.bias")
            ? config.headCount
            : name.hasSuffix("attn_k.weight") || name.hasSuffix("attn_k.bias") ? config.kvHeadCount : 0
        if unpermute && heads > 0 {
            let rows = e.shape[0], cols = e.count / rows, d = config.headDim
            let tmp = FloatBuffer(count: e.count)
            try gguf.dequantizeRows(of: info, rows: 0..<info.rowCount, into: tmp.pointer)
            for h in 0..<heads {
                for i in 0..<(d / 2) {
                    for j in 0..<2 {  // HF[h·D + j·D/2 + i] = GGUF[h·D + 2i + j]
                        (dst + (h * d + j * d / 2 + i) * cols).update(
                            from: tmp.pointer + (h * d + 2 * i + j) * cols, count: cols)
                    }
                }
            }
        } else {
            try gguf.dequantizeRows(of: info, rows: 0..<info.rowCount, into: dst)
        }
    }
}

extension Tokenizer {
    /// The byte-level BPE tokenizer stored in GGUF metadata (`tokenizer.ggml.*`).
    public convenience init(gguf: GGUFFile) throws {
        let m = gguf.metadata
        let file = gguf.url.path
        guard let model = m["tokenizer.ggml.model"]?.string else {
            throw ModelError.invalidConfig(
                file: file, field: "tokenizer.ggml.model", value: "missing", expected: "\"gpt2\" (byte-level BPE)")
        }
        guard model == "gpt2" else {
            throw ModelError.invalidConfig(
                file: file, field: "tokenizer.ggml.model", value: model, expected: "\"gpt2\" (byte-level BPE)")
        }
        guard let tokens = m["tokenizer.ggml.tokens"]?.strings else {
            throw ModelError.invalidConfig(
                file: file, field: "tokenizer.ggml.tokens", value: "missing", expected: "an array of strings")
        }
        guard let merges = m["tokenizer.ggml.merges"]?.strings else {
            throw ModelError.invalidConfig(
                file: file, field: "tokenizer.ggml.merges", value: "missing", expected: "an array of strings")
        }
        let pre = try PreTokenizerKind(ggufName: m["tokenizer.ggml.pre"]?.string ?? "gpt-2")
        try self.init(
            tokens: tokens, merges: merges, tokenTypes: m["tokenizer.ggml.token_type"]?.int32s,
            specialTokens: SpecialTokenIDs(
                bos: m["tokenizer.ggml.bos_token_id"]?.int, eos: m["tokenizer.ggml.eos_token_id"]?.int,
                pad: m["tokenizer.ggml.padding_token_id"]?.int,
                unknown: m["tokenizer.ggml.unknown_token_id"]?.int),
            preTokenizer: pre, chatTemplate: m["tokenizer.chat_template"]?.string)
    }
}

extension QuantizedType {
    /// The type for a ggml type number, nil for types kept only as Float32 here.
    init?(ggml: UInt32) {
        guard let t = QuantizedType(rawValue: Int32(ggml)), t != .f32 else { return nil }
        self = t
    }
}

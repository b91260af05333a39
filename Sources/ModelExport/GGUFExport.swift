// A llama.cpp-loadable GGUF v3 file, laid out as llama.cpp's `convert_hf_to_gguf.py` writes a
// `LlamaForCausalLM` / `Qwen2ForCausalLM`: `<arch>.*` hyper-parameters, the byte-level BPE
// tokenizer as `tokenizer.ggml.*` arrays, and tensors under llama.cpp names (`token_embd`,
// `blk.N.attn_q`, …, `output_norm`, `output` when untied). For the `llama` architecture the rows
// of q/k projections are permuted into llama.cpp's interleaved-RoPE order (the converter's
// `LlamaModel.permute`; the inverse of what `LlamaModel.load(gguf:)` undoes). 1-D tensors stay
// F32 as llama.cpp keeps them; Q8_0 applies to 2-D tensors whose rows are a multiple of 32.

import Foundation
import ModelFormats
import Models
import TensorCore
import Tokenizers

/// Writes a model and its tokenizer as a GGUF file for llama.cpp (and `ModelRegistry.load`).
///
/// ```swift
/// try GGUFExport.save(model: loaded.model, tokenizer: loaded.tokenizer,
///                     chatTemplate: loaded.chatTemplate?.source, type: .q8_0, name: "my-model", to: file)
/// ```
///
/// See Also: `HFCheckpoint`, ggml `docs/gguf.md`.
public enum GGUFExport {
    /// Storage type of the 2-D weights.
    public enum TensorType: String, Sendable, CaseIterable {
        case f32, f16, q8_0

        /// `general.file_type` (llama.cpp `llama_ftype`): ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q8_0 = 7.
        var fileType: UInt32 {
            switch self {
            case .f32: 0
            case .f16: 1
            case .q8_0: 7
            }
        }
    }

    /// Writes the GGUF file atomically (temporary file, fsync, rename).
    ///
    /// - Parameters:
    ///   - model: Exported as is; it must have no active adapter (use `saveMerged` for that).
    ///   - tokenizer: Stored as `tokenizer.ggml.*`; a tokenizer with fewer tokens than the model's
    ///     vocabulary is padded with unused `[PAD<id>]` tokens, as llama.cpp's converter does.
    ///   - chatTemplate: Jinja source; nil uses `tokenizer.chatTemplate` (none when both are nil).
    ///   - type: Storage of 2-D weights; `.q8_0` falls back to F16 for rows that are not a
    ///     multiple of 32 long. Norm weights and biases are always F32.
    ///   - name: `general.name`.
    ///   - file: The destination. An existing file that is not a GGUF is refused unless `overwrite`.
    /// - Throws: `ExportError` (vocabulary larger than the model, RoPE scaling that
    ///   llama.cpp would need as a `rope_freqs` tensor, destination problems, write failures).
    public static func save(
        model: LlamaModel, tokenizer: Tokenizer, chatTemplate: String? = nil, type: TensorType,
        name: String, to file: URL, overwrite: Bool = false
    ) throws {
        let c = model.config
        try ExportError.requireDense(model)
        guard tokenizer.vocabularySize <= c.vocabularySize else {
            throw ExportError.vocabularyMismatch(
                tokenizer: tokenizer.vocabularySize, model: c.vocabularySize)
        }
        if c.ropeScaling != nil {
            throw ExportError.unsupported(
                file: file.path, feature: "Llama 3 RoPE scaling in GGUF",
                hint:
                    "Hint: llama.cpp stores it as a rope_freqs tensor that LlamaModel.load(gguf:) "
                    + "does not read; export a Hugging Face directory (HFCheckpoint) and convert it "
                    + "with convert_hf_to_gguf.py.")
        }
        try ExportDestination.prepareFile(
            file, overwrite: overwrite, expected: "a GGUF file", looksLikeExport: isGGUF)
        let arch = c.hasAttentionBias ? "qwen2" : "llama"
        let metadata = self.metadata(
            model: c, tokenizer: tokenizer, chatTemplate: chatTemplate ?? tokenizer.chatTemplate,
            arch: arch, type: type, name: name)
        let tensors = self.tensors(model, permuteQK: arch == "llama", type: type)
        do {
            try GGUFWriter.write(metadata: metadata, tensors: tensors, to: file)
        } catch let error as ModelFormatError {
            throw ExportError.writeFailed(
                path: file.standardizedFileURL.path, operation: "writing GGUF",
                reason: error.description)
        }
    }

    /// Saves `model` with `adapter` merged into a copy of its weights (`LlamaModel.merged(with:)`);
    /// `model` is unchanged. Parameters as `save`.
    public static func saveMerged(
        model: LlamaModel, adapter: LoRAAdapter, tokenizer: Tokenizer, chatTemplate: String? = nil,
        type: TensorType, name: String, to file: URL, overwrite: Bool = false
    ) throws {
        try save(
            model: model.merged(with: adapter), tokenizer: tokenizer, chatTemplate: chatTemplate,
            type: type, name: name, to: file, overwrite: overwrite)
    }

    /// The storage type of a tensor of `shape` (PyTorch order) when `type` is requested.
    static func storage(shape: [Int], requested type: TensorType) -> GGMLType {
        guard shape.count >= 2 else { return .f32 }
        switch type {
        case .f32: return .f32
        case .f16: return .f16
        case .q8_0: return shape[shape.count - 1] % 32 == 0 ? .q8_0 : .f16
        }
    }

    /// llama.cpp's name for an HF parameter name (`tensor_mapping.py`).
    static func ggufName(_ hf: String) -> String {
        let fixed = [
            "model.embed_tokens.weight": "token_embd.weight",
            "model.norm.weight": "output_norm.weight",
            "lm_head.weight": "output.weight",
        ]
        if let name = fixed[hf] { return name }
        let parts = hf.split(separator: ".")  // model.layers.N.<module>.<proj>.<weight|bias>
        let rest = parts.dropFirst(3).joined(separator: ".")
        let map = [
            "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
            "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
            "self_attn.v_proj": "attn_v",
            "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
            "mlp.down_proj": "ffn_down",
        ]
        let module = rest.split(separator: ".").dropLast().joined(separator: ".")
        let suffix = rest.split(separator: ".").last.map(String.init) ?? "weight"
        return "blk.\(parts[2]).\(map[module] ?? module).\(suffix)"
    }

    private static func tensors(_ model: LlamaModel, permuteQK: Bool, type: TensorType)
        -> [GGUFWriter.Tensor]
    {
        let c = model.config
        let store = model.weights
        return store.entries.map { e in
            let pointer = UnsafePointer(store.values.pointer + e.offset)
            let name = ggufName(e.name)
            let dimensions = Array(e.shape.reversed())
            let storage = storage(shape: e.shape, requested: type)
            let heads =
                name.hasPrefix("blk.") && name.hasSuffix("attn_q.weight")
                ? c.headCount
                : name.hasPrefix("blk.") && name.hasSuffix("attn_k.weight") ? c.kvHeadCount : 0
            guard permuteQK && heads > 0 else {
                return GGUFWriter.Tensor(
                    name: name, dimensions: dimensions, type: storage, pointer: pointer)
            }
            let values = interleavedRoPERows(
                pointer, heads: heads, headDim: c.headDim, columns: e.shape[1])
            return GGUFWriter.Tensor(
                name: name, dimensions: dimensions, type: storage, values: values)
        }
    }

    /// Rows of a q/k projection in llama.cpp's order: GGUF[h·D + 2i + j] = HF[h·D + j·D/2 + i]
    /// (D = head dim, i < D/2, j ∈ {0, 1}), so pairs rotated together by RoPE are adjacent.
    static func interleavedRoPERows(
        _ source: UnsafePointer<Float>, heads: Int, headDim d: Int, columns: Int
    ) -> [Float] {
        [Float](unsafeUninitializedCapacity: heads * d * columns) { out, initialized in
            let base = out.baseAddress!
            for h in 0..<heads {
                for i in 0..<(d / 2) {
                    for j in 0..<2 {
                        (base + (h * d + 2 * i + j) * columns).initialize(
                            from: source + (h * d + j * d / 2 + i) * columns,
                            count: columns)
                    }
                }
            }
            initialized = heads * d * columns
        }
    }

    /// Whether `file` starts with the GGUF magic.
    static func isGGUF(_ file: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)) == Data("GGUF".utf8)
    }
}

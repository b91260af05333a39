// A Hugging Face checkpoint directory as `LlamaForCausalLM.save_pretrained` /
// `Qwen2ForCausalLM.save_pretrained` and the tokenizer's `save_pretrained` write it:
// `config.json` (transformers `LlamaConfig` / `Qwen2Config`, keys sorted), `generation_config.json`,
// `model.safetensors` (HF parameter names, `{"format": "pt"}` metadata; tied embeddings store no
// `lm_head.weight`), `tokenizer.json`, `tokenizer_config.json` and `chat_template.jinja`.
// The weights written are the model's base weights; a LoRA-adapted model is exported merged.

import Foundation
import ModelFormats
import Models
import TensorCore
import Tokenizers

/// Writes a model, its tokenizer and chat template as a Hugging Face checkpoint directory that
/// `transformers` (`AutoModelForCausalLM.from_pretrained`) and `ModelRegistry.load` read back.
///
/// ```swift
/// let loaded = try ModelRegistry.load(ModelRegistry.defaultModelName)
/// try HFCheckpoint.save(model: loaded.model, tokenizer: loaded.tokenizer,
///                       chatTemplate: loaded.chatTemplate?.source, dtype: .bf16, to: dir)
/// ```
///
/// See Also: `GGUFExport`, `PEFTAdapter`, `LlamaModel.merged(with:)`.
public enum HFCheckpoint {
    /// Element type of `model.safetensors`.
    public enum DType: String, Sendable, CaseIterable {
        case f32, bf16

        var safetensors: SafeTensorsDType { self == .f32 ? .f32 : .bf16 }
        /// transformers' `torch_dtype` spelling.
        var torchName: String { self == .f32 ? "float32" : "bfloat16" }
    }

    /// The files a checkpoint directory holds; a destination holding only these is replaced.
    public static let fileNames: Set<String> = [
        "config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    ]

    /// Writes the checkpoint directory atomically: the files are built in a hidden staging
    /// directory beside it and swapped in at once, so a failed or interrupted export leaves any
    /// previous export intact.
    ///
    /// - Parameters:
    ///   - model: Its base weights, exported as they are (`saveMerged` adds an adapter's update).
    ///   - heads: Scalar heads to save beside the weights under their own names; a `score` head makes
    ///     the directory a `…ForSequenceClassification` checkpoint (one label, a reward model).
    ///   - tokenizer: Written as `tokenizer.json` + `tokenizer_config.json`; at most as many
    ///     tokens as the model's vocabulary.
    ///   - chatTemplate: Jinja source; nil uses `tokenizer.chatTemplate` (none when both are nil).
    ///   - dtype: `.f32` (bit-exact) or `.bf16` (round to nearest even).
    ///   - directory: Created if needed; a non-empty directory holding other files than a
    ///     checkpoint's is refused unless `overwrite`.
    /// - Throws: `ExportError` (vocabulary larger than the model, destination
    ///   problems, write failures); an existing export at `directory` is intact on failure.
    public static func save(
        model: LlamaModel, tokenizer: Tokenizer, chatTemplate: String? = nil, dtype: DType = .f32,
        heads: [ScalarHead] = [], to directory: URL, overwrite: Bool = false
    ) throws {
        try ExportError.requireDense(model)
        guard tokenizer.vocabularySize <= model.config.vocabularySize else {
            throw ExportError.vocabularyMismatch(
                tokenizer: tokenizer.vocabularySize, model: model.config.vocabularySize)
        }
        let template = chatTemplate ?? tokenizer.chatTemplate
        let tensors =
            model.weights.tensors(prefix: "", dtype: dtype.safetensors)
            + heads.flatMap { $0.store.tensors(prefix: "", dtype: dtype.safetensors) }
        let classifies = heads.contains { $0.name == scoreHeadName }
        let tokenizerJSON = HFTokenizerFiles.tokenizerJSON(tokenizer)
        let tokenizerConfig = HFTokenizerFiles.tokenizerConfigJSON(
            tokenizer, chatTemplate: template, maxLength: model.config.maxPositions)
        try ExportDestination.writeDirectory(
            directory, ownedNames: fileNames, overwrite: overwrite
        ) { staging in
            func file(_ name: String) -> URL { staging.appendingPathComponent(name) }
            try ExportDestination.writeJSON(
                configJSON(model.config, tokenizer: tokenizer, dtype: dtype, sequenceClassification: classifies),
                to: file("config.json"))
            try ExportDestination.writeJSON(
                generationConfigJSON(model.config, tokenizer: tokenizer),
                to: file("generation_config.json"))
            try SafeTensorsWriter.write(
                tensors: tensors, metadata: ["format": "pt"], to: file("model.safetensors"))
            try ExportDestination.writeJSON(tokenizerJSON, to: file("tokenizer.json"))
            try ExportDestination.writeJSON(tokenizerConfig, to: file("tokenizer_config.json"))
            if let template {
                try ExportDestination.writeFile(
                    Data(template.utf8), to: file("chat_template.jinja"))
            }
        }
    }

    /// Saves `model` with `adapter` merged into a copy of its weights (`LlamaModel.merged(with:)`);
    /// `model` is unchanged. Reloading the directory gives the adapter-on model's logits up to
    /// float rounding. Parameters as `save`.
    public static func saveMerged(
        model: LlamaModel, adapter: LoRAAdapter, tokenizer: Tokenizer, chatTemplate: String? = nil,
        dtype: DType = .f32, heads: [ScalarHead] = [], to directory: URL, overwrite: Bool = false
    ) throws {
        try save(
            model: model.merged(with: adapter), tokenizer: tokenizer, chatTemplate: chatTemplate,
            dtype: dtype, heads: heads, to: directory, overwrite: overwrite)
    }

    /// The head `…ForSequenceClassification` names `score` (one label: a reward model).
    public static let scoreHeadName = "score"

    /// `config.json`: `LlamaConfig`, or `Qwen2Config` when q/k/v have biases. A sequence-classification
    /// checkpoint has one label and a pad id (transformers pools at the last non-pad token).
    static func configJSON(_ c: LlamaConfig, tokenizer: Tokenizer, dtype: DType, sequenceClassification: Bool = false)
        -> JSON
    {
        let isQwen2 = c.hasAttentionBias
        let task = sequenceClassification ? "ForSequenceClassification" : "ForCausalLM"
        let pad = sequenceClassification ? tokenizer.padTokenID ?? tokenizer.eosTokenID : tokenizer.padTokenID
        var fields: [(String, JSON)] = [
            ("architectures", .array([.string((isQwen2 ? "Qwen2" : "Llama") + task)])),
            ("attention_bias", .bool(c.hasAttentionBias)), ("attention_dropout", .double(0)),
            ("bos_token_id", .optional(c.bosTokenID ?? tokenizer.bosTokenID)),
            ("eos_token_id", eosJSON(c, tokenizer)),
            ("head_dim", .int(c.headDim)), ("hidden_act", .string("silu")),
            ("hidden_size", .int(c.hiddenSize)),
            ("initializer_range", .double(0.02)), ("intermediate_size", .int(c.intermediateSize)),
            ("max_position_embeddings", .int(c.maxPositions)),
            ("model_type", .string(isQwen2 ? "qwen2" : "llama")),
            ("num_attention_heads", .int(c.headCount)), ("num_hidden_layers", .int(c.layerCount)),
            ("num_key_value_heads", .int(c.kvHeadCount)),
            ("pad_token_id", .optional(pad)),
            ("rms_norm_eps", .float(c.rmsNormEpsilon)),
            ("rope_scaling", ropeScalingJSON(c.ropeScaling)),
            ("rope_theta", .double(c.ropeTheta)),
            ("tie_word_embeddings", .bool(c.tiesWordEmbeddings)),
            ("torch_dtype", .string(dtype.torchName)), ("use_cache", .bool(true)),
            ("vocab_size", .int(c.vocabularySize)),
        ]
        if sequenceClassification {
            fields += [
                ("id2label", .object([("0", .string("LABEL_0"))])),
                ("label2id", .object([("LABEL_0", .int(0))])),
            ]
        }
        if isQwen2 {
            fields += [
                ("max_window_layers", .int(c.layerCount)), ("sliding_window", .null),
                ("use_sliding_window", .bool(false)),
            ]
        } else {
            fields += [("mlp_bias", .bool(false)), ("pretraining_tp", .int(1))]
        }
        return .object(fields.sorted { $0.0 < $1.0 })
    }

    /// `generation_config.json`: the special ids `generate` needs.
    static func generationConfigJSON(_ c: LlamaConfig, tokenizer: Tokenizer) -> JSON {
        .object([
            ("bos_token_id", .optional(c.bosTokenID ?? tokenizer.bosTokenID)),
            ("eos_token_id", eosJSON(c, tokenizer)),
            ("pad_token_id", .optional(tokenizer.padTokenID)),
        ])
    }

    /// One id as a number, several as a list (transformers accepts both).
    private static func eosJSON(_ c: LlamaConfig, _ tokenizer: Tokenizer) -> JSON {
        let ids = c.eosTokenIDs.isEmpty ? tokenizer.eosTokenID.map { [$0] } ?? [] : c.eosTokenIDs
        switch ids.count {
        case 0: return .null
        case 1: return .int(ids[0])
        default: return .array(ids.map { .int($0) })
        }
    }

    private static func ropeScalingJSON(_ s: RoPEScaling?) -> JSON {
        guard let s else { return .null }
        return .object([
            ("factor", .double(s.factor)), ("high_freq_factor", .double(s.highFrequencyFactor)),
            ("low_freq_factor", .double(s.lowFrequencyFactor)),
            ("original_max_position_embeddings", .int(s.originalMaxPositions)),
            ("rope_type", .string("llama3")),
        ])
    }
}

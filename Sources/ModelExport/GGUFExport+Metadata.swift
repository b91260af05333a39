// GGUF metadata of an exported model, in the order and with the value types llama.cpp's
// `convert_hf_to_gguf.py` (gguf-py `GGUFWriter.add_*`) uses: `general.*`, the `<arch>.*`
// hyper-parameters (uint32 counts, float32 RoPE base and RMS epsilon), and `tokenizer.ggml.*`
// (model "gpt2", the pre-tokenizer name llama.cpp's `llama_vocab` knows, tokens, int32 token types,
// "left right" merges, uint32 special ids) plus `tokenizer.chat_template`.

import ModelFormats
import Models
import Tokenizers

extension GGUFExport {
    /// llama.cpp's `tokenizer.ggml.pre` name of a pre-tokenizer kind.
    static func ggufPreTokenizerName(_ kind: PreTokenizerKind) -> String {
        switch kind {
        case .gpt2: "gpt-2"
        case .smollm: "smollm"
        case .llama3: "llama-bpe"
        case .qwen2: "qwen2"
        }
    }

    static func metadata(
        model c: LlamaConfig, tokenizer t: Tokenizer, chatTemplate: String?, arch: String,
        type: TensorType, name: String
    ) -> [(key: String, value: GGUFValue)] {
        func u32(_ v: Int) -> GGUFValue { .uint32(UInt32(v)) }
        var m: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string(arch)), ("general.type", .string("model")),
            ("general.name", .string(name)),
            ("\(arch).block_count", u32(c.layerCount)),
            ("\(arch).context_length", u32(c.maxPositions)),
            ("\(arch).embedding_length", u32(c.hiddenSize)),
            ("\(arch).feed_forward_length", u32(c.intermediateSize)),
            ("\(arch).attention.head_count", u32(c.headCount)),
            ("\(arch).attention.head_count_kv", u32(c.kvHeadCount)),
            ("\(arch).rope.freq_base", .float32(Float(c.ropeTheta))),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(c.rmsNormEpsilon)),
        ]
        if c.headDim * c.headCount != c.hiddenSize {
            m += [
                ("\(arch).attention.key_length", u32(c.headDim)),
                ("\(arch).attention.value_length", u32(c.headDim)),
            ]
        }
        m += [
            ("general.file_type", .uint32(type.fileType)),
            ("\(arch).vocab_size", u32(c.vocabularySize)),
            ("\(arch).rope.dimension_count", u32(c.headDim)),
        ]
        m += tokenizerMetadata(t, model: c, chatTemplate: chatTemplate)
        m.append(("general.quantization_version", .uint32(2)))
        return m
    }

    /// `tokenizer.ggml.*`: the vocabulary padded to the model's size with unused `[PAD<id>]`
    /// tokens (llama.cpp needs one token per embedding row), holes named the same way.
    static func tokenizerMetadata(
        _ t: Tokenizer, model c: LlamaConfig,
        chatTemplate: String?
    ) -> [(key: String, value: GGUFValue)] {
        var tokens = t.vocabulary
        var types = t.tokenTypeValues
        let unused = TokenType.unused.rawValue
        for id in tokens.indices where tokens[id].isEmpty {
            tokens[id] = "[PAD\(id)]"
            types[id] = unused
        }
        for id in tokens.count..<max(tokens.count, c.vocabularySize) {
            tokens.append("[PAD\(id)]")
            types.append(unused)
        }
        var m: [(key: String, value: GGUFValue)] = [
            ("tokenizer.ggml.add_space_prefix", .bool(false)),
            ("tokenizer.ggml.add_bos_token", .bool(false)),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(ggufPreTokenizerName(t.preTokenizer))),
            ("tokenizer.ggml.tokens", .strings(tokens)),
            ("tokenizer.ggml.token_type", .int32s(types)),
            ("tokenizer.ggml.merges", .strings(t.mergeRules.map { $0.left + " " + $0.right })),
        ]
        let eos = t.eosTokenID ?? c.eosTokenIDs.first
        let ids: [(String, Int?)] = [
            ("bos_token_id", t.bosTokenID ?? c.bosTokenID), ("eos_token_id", eos),
            ("eot_token_id", c.eosTokenIDs.first { $0 != eos }),
            ("unknown_token_id", t.unknownTokenID),
            ("padding_token_id", t.padTokenID),
        ]
        for case (let key, let id?) in ids {
            m.append(("tokenizer.ggml.\(key)", .uint32(UInt32(id))))
        }
        if let chatTemplate { m.append(("tokenizer.chat_template", .string(chatTemplate))) }
        return m
    }
}

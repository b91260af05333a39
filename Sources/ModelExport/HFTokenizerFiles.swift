// `tokenizer.json` (HF `tokenizers` serialisation of a byte-level BPE `Tokenizer`) and
// `tokenizer_config.json` (transformers `PreTrainedTokenizerFast`) for a `Tokenizer`. The
// pre-tokenizer is the one HF uses for the same split: GPT-2 `ByteLevel(use_regex: true)`,
// SmolLM's `Sequence[Digits(individual_digits), ByteLevel]`, or Llama 3 / Qwen2's
// `Sequence[Split(regex, Isolated), ByteLevel(use_regex: false)]`. Control and unknown tokens become
// special added tokens, user-defined ones non-special added tokens. No post-processor adds BOS:
// like `Tokenizer.encode`, the exported tokenizer never inserts special tokens.

import Foundation
import Tokenizers

enum HFTokenizerFiles {
    /// The `Split` patterns HF stores for Llama 3 and Qwen2 (identical to those Tokenizers matches).
    static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"#
        + #"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"#
        + #"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Ids of added tokens (special or not), by llama.cpp token type: control / unknown are
    /// special, user-defined are not.
    static func addedTokens(_ t: Tokenizer) -> [(id: Int, content: String, special: Bool)] {
        let tokens = t.vocabulary
        return t.tokenTypeValues.enumerated().compactMap { id, raw in
            guard !tokens[id].isEmpty else { return nil }
            switch TokenType(rawValue: raw) {
            case .control?, .unknown?: return (id, tokens[id], true)
            case .userDefined?: return (id, tokens[id], false)
            default: return nil
            }
        }
    }

    static func tokenizerJSON(_ t: Tokenizer) -> JSON {
        let tokens = t.vocabulary
        // A JSON object cannot hold a string twice: like `Tokenizer` (later duplicates win), keep
        // the last id of a repeated string; earlier ones become holes.
        var lastID: [String: Int] = [:]
        for (id, token) in tokens.enumerated() where !token.isEmpty { lastID[token] = id }
        var vocab: [(String, JSON)] = []
        vocab.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() where !token.isEmpty && lastID[token] == id {
            vocab.append((token, .int(id)))
        }
        let rules = t.mergeRules
        let needsPairs = rules.contains { $0.left.contains(" ") || $0.right.contains(" ") }
        let merges: [JSON] = rules.map { rule in
            needsPairs
                ? .array([.string(rule.left), .string(rule.right)])
                : .string(rule.left + " " + rule.right)
        }
        let added: [JSON] = addedTokens(t).map { token in
            .object([
                ("id", .int(token.id)), ("content", .string(token.content)),
                ("single_word", .bool(false)),
                ("lstrip", .bool(false)), ("rstrip", .bool(false)),
                ("normalized", .bool(!token.special)),
                ("special", .bool(token.special)),
            ])
        }
        let model: JSON = .object([
            ("type", .string("BPE")), ("dropout", .null),
            ("unk_token", .optional(t.modelUnknownTokenID.map { tokens[$0] })),
            ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null),
            ("fuse_unk", .bool(false)),
            ("byte_fallback", .bool(false)), ("ignore_merges", .bool(t.ignoresMerges)),
            ("vocab", .object(vocab)),
            ("merges", .array(merges)),
        ])
        return .object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null),
            ("added_tokens", .array(added)),
            ("normalizer", .null), ("pre_tokenizer", preTokenizerJSON(t.preTokenizer)),
            ("post_processor", byteLevel(addPrefixSpace: true, trimOffsets: false, useRegex: true)),
            ("decoder", byteLevel(addPrefixSpace: true, trimOffsets: true, useRegex: true)),
            ("model", model),
        ])
    }

    static func preTokenizerJSON(_ kind: PreTokenizerKind) -> JSON {
        switch kind {
        case .gpt2:
            return byteLevel(addPrefixSpace: false, trimOffsets: true, useRegex: true)
        case .smollm:
            return .object([
                ("type", .string("Sequence")),
                (
                    "pretokenizers",
                    .array([
                        .object([("type", .string("Digits")), ("individual_digits", .bool(true))]),
                        byteLevel(addPrefixSpace: false, trimOffsets: true, useRegex: true),
                    ])
                ),
            ])
        case .llama3, .qwen2:
            let split: JSON = .object([
                ("type", .string("Split")),
                (
                    "pattern",
                    .object([("Regex", .string(kind == .llama3 ? llama3Pattern : qwen2Pattern))])
                ),
                ("behavior", .string("Isolated")), ("invert", .bool(false)),
            ])
            return .object([
                ("type", .string("Sequence")),
                (
                    "pretokenizers",
                    .array([
                        split,
                        byteLevel(addPrefixSpace: false, trimOffsets: false, useRegex: false),
                    ])
                ),
            ])
        }
    }

    private static func byteLevel(addPrefixSpace: Bool, trimOffsets: Bool, useRegex: Bool) -> JSON {
        .object([
            ("type", .string("ByteLevel")), ("add_prefix_space", .bool(addPrefixSpace)),
            ("trim_offsets", .bool(trimOffsets)),
            ("use_regex", .bool(useRegex)),
        ])
    }

    /// `tokenizer_config.json`: special tokens by content, the chat template, no BOS insertion.
    static func tokenizerConfigJSON(_ t: Tokenizer, chatTemplate: String?, maxLength: Int) -> JSON {
        let tokens = t.vocabulary
        func content(_ id: Int?) -> JSON {
            .optional(id.flatMap { tokens.indices.contains($0) ? tokens[$0] : nil })
        }
        let decoder: [(String, JSON)] = addedTokens(t).map { token in
            (
                String(token.id),
                .object([
                    ("content", .string(token.content)), ("lstrip", .bool(false)),
                    ("normalized", .bool(!token.special)),
                    ("rstrip", .bool(false)), ("single_word", .bool(false)),
                    ("special", .bool(token.special)),
                ])
            )
        }
        var fields: [(String, JSON)] = [
            ("add_bos_token", .bool(false)), ("add_eos_token", .bool(false)),
            ("added_tokens_decoder", .object(decoder)),
            ("bos_token", content(t.bosTokenID)), ("clean_up_tokenization_spaces", .bool(false)),
            ("eos_token", content(t.eosTokenID)), ("model_max_length", .int(maxLength)),
            ("pad_token", content(t.padTokenID)),
            ("tokenizer_class", .string("PreTrainedTokenizerFast")),
            ("unk_token", content(t.unknownTokenID)),
        ]
        if let chatTemplate { fields.append(("chat_template", .string(chatTemplate))) }
        return .object(fields.sorted { $0.0 < $1.0 })
    }
}

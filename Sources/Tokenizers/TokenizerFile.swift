// The decodable shape of HF `tokenizer.json` and `tokenizer_config.json` (HF `tokenizers`
// serialization, `transformers` `PreTrainedTokenizerBase`), and its translation into a
// `TokenizerSpec`. Only byte-level BPE is accepted; every other choice is refused by name.

import Foundation

/// The pattern strings HF stores for the Llama 3 and Qwen2 `Split` pre-tokenizers.
let llama3Pattern =
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"#
    + #"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
let qwen2Pattern =
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"#
    + #"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

/// A merge rule: "left right" (tokenizers < 0.20) or `["left", "right"]`.
struct MergeRule: Decodable {
    var left: String
    var right: String
    var malformedText: String?

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            if let (left, right) = splitMerge(text) {
                (self.left, self.right) = (left, right)
            } else {
                (self.left, self.right, malformedText) = ("", "", text)
            }
        } else {
            let pair = try container.decode([String].self)
            guard pair.count == 2 else {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: decoder.codingPath,
                        debugDescription: "a pair of \(pair.count) strings, expected 2"))
            }
            (left, right) = (pair[0], pair[1])
        }
    }
}

/// A token field of `tokenizer_config.json`: a string or an AddedToken object with "content".
struct TokenContent: Decodable {
    var content: String

    init(from decoder: any Decoder) throws {
        if let container = try? decoder.singleValueContainer(),
            let text = try? container.decode(String.self)
        {
            content = text
        } else {
            let container = try decoder.container(keyedBy: AnyKey.self)
            content = try container.decode(String.self, forKey: AnyKey("content"))
        }
    }
}

/// `chat_template`: a string, or a list of `{name, template}` (the "default" one is used).
struct ChatTemplateField: Decodable {
    var template: String

    private struct Named: Decodable {
        var name: String?
        var template: String
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            template = text
        } else {
            let list = try container.decode([Named].self)
            guard let chosen = list.first(where: { $0.name == "default" }) ?? list.first else {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: decoder.codingPath, debugDescription: "an empty template list"))
            }
            template = chosen.template
        }
    }
}

struct TokenizerConfigFile: Decodable {
    var bosToken: TokenContent?
    var eosToken: TokenContent?
    var padToken: TokenContent?
    var unkToken: TokenContent?
    var chatTemplate: ChatTemplateField?

    enum CodingKeys: String, CodingKey {
        case bosToken = "bos_token"
        case eosToken = "eos_token"
        case padToken = "pad_token"
        case unkToken = "unk_token"
        case chatTemplate = "chat_template"
    }
}

/// The parts of `tokenizer.json` a byte-level BPE tokenizer uses. `truncation`, `padding` and
/// `post_processor` are ignored: `encode` never adds special tokens, pads or truncates.
struct TokenizerFile: Decodable {
    var addedTokens: [AddedTokenEntry]?
    var normalizer: JSONValue?
    var preTokenizer: JSONValue?
    var decoder: JSONValue?
    var model: Model

    enum CodingKeys: String, CodingKey {
        case addedTokens = "added_tokens"
        case normalizer
        case preTokenizer = "pre_tokenizer"
        case decoder, model
    }

    struct AddedTokenEntry: Decodable {
        var id: Int
        var content: String
        var special: Bool?
        var lstrip: Bool?
        var rstrip: Bool?
        var singleWord: Bool?

        enum CodingKeys: String, CodingKey {
            case id, content, special, lstrip, rstrip
            case singleWord = "single_word"
        }
    }

    struct Model: Decodable {
        var type: String?
        var vocab: [String: Int]
        var merges: [MergeRule]
        var dropout: Double?
        var unkToken: String?
        var continuingSubwordPrefix: String?
        var endOfWordSuffix: String?
        var byteFallback: Bool?
        var ignoreMerges: Bool?

        enum CodingKeys: String, CodingKey {
            case type, vocab, merges, dropout
            case unkToken = "unk_token"
            case continuingSubwordPrefix = "continuing_subword_prefix"
            case endOfWordSuffix = "end_of_word_suffix"
            case byteFallback = "byte_fallback"
            case ignoreMerges = "ignore_merges"
        }
    }

    /// Ids above this are rejected rather than allocating a huge vocabulary.
    static let maximumTokenID = 1 << 24

    /// The tokenizer description, with special token ids and the chat template from `config`
    /// (`tokenizer_config.json` and its file name) when given.
    func spec(
        file: String, config: (TokenizerConfigFile, String)?
    ) throws(TokenizerError) -> TokenizerSpec {
        if let normalizer, !normalizer.isNull {
            throw .unsupportedFeature(
                file: file, field: "normalizer", value: "\(normalizer["type"] ?? normalizer)",
                supported: "null (no normalizer)")
        }
        let preTokenizer = try preTokenizerKind(file: file)
        if let decoder, !decoder.isNull, decoder["type"]?.string != "ByteLevel" {
            throw .unsupportedFeature(
                file: file, field: "decoder.type", value: "\(decoder["type"] ?? decoder)",
                supported: "ByteLevel or a null decoder")
        }
        try checkModelOptions(file: file)
        let (tokens, types, addedTokens) = try vocabulary(file: file)
        var merges: [(left: String, right: String)] = []
        merges.reserveCapacity(model.merges.count)
        for (index, rule) in model.merges.enumerated() {
            if let malformed = rule.malformedText {
                throw .malformedMerge(
                    field: "\(file): model.merges", index: index, merge: malformed)
            }
            merges.append((rule.left, rule.right))
        }
        var tokenIDs: [String: Int] = [:]
        for (id, token) in tokens.enumerated() where !token.isEmpty { tokenIDs[token] = id }
        func resolve(_ token: String, file: String, field: String) throws(TokenizerError) -> Int {
            guard let id = tokenIDs[token] else {
                throw .unknownSpecialToken(file: file, field: field, token: token)
            }
            return id
        }
        var special = SpecialTokenIDs()
        var bpeUnknown: Int?
        if let unknown = model.unkToken {
            bpeUnknown = try resolve(unknown, file: file, field: "model.unk_token")
            special.unknown = bpeUnknown
        }
        if let (config, configName) = config {
            let fields: [(String, TokenContent?, WritableKeyPath<SpecialTokenIDs, Int?>)] = [
                ("bos_token", config.bosToken, \.bos), ("eos_token", config.eosToken, \.eos),
                ("pad_token", config.padToken, \.pad), ("unk_token", config.unkToken, \.unknown),
            ]
            for case (let field, let token?, let path) in fields {
                special[keyPath: path] = try resolve(token.content, file: configName, field: field)
            }
        }
        return TokenizerSpec(
            tokens: tokens, tokenTypes: types, merges: merges, tokensField: "\(file): model.vocab",
            mergesField: "\(file): model.merges", addedTokens: addedTokens, specialTokens: special,
            bpeUnknownTokenID: bpeUnknown, preTokenizer: preTokenizer,
            ignoresMerges: model.ignoreMerges ?? false,
            chatTemplate: config?.0.chatTemplate?.template)
    }

    /// Tokens by id from `model.vocab` and `added_tokens` (holes become unused empty tokens).
    private func vocabulary(
        file: String
    ) throws(TokenizerError) -> ([String], [TokenType], [AddedToken]) {
        var tokens: [String] = []
        var types: [TokenType] = []
        func place(_ token: String, id: Int, type: TokenType, field: String) throws(TokenizerError) {
            guard (0..<Self.maximumTokenID).contains(id) else {
                throw .invalidField(
                    file: file, field: field, expected: "an id in 0..<\(Self.maximumTokenID)",
                    found: "\(id)")
            }
            if id >= tokens.count {
                tokens.append(contentsOf: repeatElement("", count: id + 1 - tokens.count))
                types.append(contentsOf: repeatElement(.unused, count: id + 1 - types.count))
            }
            tokens[id] = token
            types[id] = type
        }
        for (token, id) in model.vocab.sorted(by: { $0.value < $1.value }) {
            let field = "model.vocab[\"\(token)\"]"
            if id >= 0 && id < tokens.count && types[id] != .unused {
                throw .invalidField(
                    file: file, field: field, expected: "a unique id",
                    found: "\(id), which \"\(tokens[id])\" also has")
            }
            try place(token, id: id, type: .normal, field: field)
        }
        guard !tokens.isEmpty else { throw .emptyVocabulary(field: "\(file): model.vocab") }
        var addedTokens: [AddedToken] = []
        for (index, entry) in (self.addedTokens ?? []).enumerated() {
            let special = entry.special ?? false
            try place(
                entry.content, id: entry.id, type: special ? .control : .userDefined,
                field: "added_tokens[\(index)].id")
            addedTokens.append(
                AddedToken(
                    id: entry.id, content: entry.content, isSpecial: special,
                    stripsLeft: entry.lstrip ?? false, stripsRight: entry.rstrip ?? false,
                    isSingleWord: entry.singleWord ?? false))
        }
        return (tokens, types, addedTokens)
    }

    private func checkModelOptions(file: String) throws(TokenizerError) {
        if let type = model.type, type != "BPE" {
            throw .unsupportedFeature(
                file: file, field: "model.type", value: "\"\(type)\"", supported: "\"BPE\"")
        }
        if let dropout = model.dropout, dropout != 0 {
            throw .unsupportedFeature(
                file: file, field: "model.dropout", value: "\(dropout)", supported: "null or 0")
        }
        for (field, value) in [
            ("model.continuing_subword_prefix", model.continuingSubwordPrefix),
            ("model.end_of_word_suffix", model.endOfWordSuffix),
        ] {
            if let value, !value.isEmpty {
                throw .unsupportedFeature(
                    file: file, field: field, value: "\"\(value)\"", supported: "null or \"\"")
            }
        }
        if model.byteFallback == true {
            throw .unsupportedFeature(
                file: file, field: "model.byte_fallback", value: "true",
                supported: "false (byte-level BPE needs no fallback)")
        }
    }

    private func preTokenizerKind(file: String) throws(TokenizerError) -> PreTokenizerKind {
        let supported =
            "ByteLevel(use_regex: true), Sequence[Digits(individual_digits: true), ByteLevel], "
            + "or Sequence[Split(Llama 3 or Qwen2 regex, Isolated), ByteLevel(use_regex: false)]"
        func unsupported(_ field: String, _ value: JSONValue?) -> TokenizerError {
            .unsupportedFeature(
                file: file, field: field, value: value.map { "\($0)" } ?? "absent",
                supported: supported)
        }
        guard let pre = preTokenizer, !pre.isNull else {
            throw unsupported("pre_tokenizer", preTokenizer)
        }
        switch pre["type"]?.string {
        case "ByteLevel":
            try checkByteLevel(pre, field: "pre_tokenizer", usesRegex: true, file: file)
            return .gpt2
        case "Sequence":
            guard case .array(let steps)? = pre["pretokenizers"] else {
                throw unsupported("pre_tokenizer.pretokenizers", pre["pretokenizers"])
            }
            let stepTypes = steps.map { $0["type"]?.string ?? "?" }
            switch stepTypes {
            case ["Digits", "ByteLevel"]:
                guard steps[0]["individual_digits"]?.bool == true else {
                    throw unsupported(
                        "pre_tokenizer.pretokenizers[0].individual_digits",
                        steps[0]["individual_digits"])
                }
                try checkByteLevel(
                    steps[1], field: "pre_tokenizer.pretokenizers[1]", usesRegex: true, file: file)
                return .smollm
            case ["Split", "ByteLevel"]:
                let split = steps[0]
                guard split["behavior"]?.string == "Isolated", split["invert"]?.bool != true else {
                    throw unsupported("pre_tokenizer.pretokenizers[0].behavior", split["behavior"])
                }
                try checkByteLevel(
                    steps[1], field: "pre_tokenizer.pretokenizers[1]", usesRegex: false, file: file)
                let pattern = split["pattern"]?["Regex"] ?? split["pattern"]?["String"]
                switch pattern?.string {
                case llama3Pattern?: return .llama3
                case qwen2Pattern?: return .qwen2
                default:
                    throw unsupported("pre_tokenizer.pretokenizers[0].pattern", split["pattern"])
                }
            default:
                throw .unsupportedFeature(
                    file: file, field: "pre_tokenizer.pretokenizers",
                    value: "[\(stepTypes.joined(separator: ", "))]", supported: supported)
            }
        default:
            throw unsupported("pre_tokenizer.type", pre["type"])
        }
    }

    private func checkByteLevel(
        _ byteLevel: JSONValue, field: String, usesRegex: Bool, file: String
    ) throws(TokenizerError) {
        if byteLevel["add_prefix_space"]?.bool == true {
            throw .unsupportedFeature(
                file: file, field: "\(field).add_prefix_space", value: "true", supported: "false")
        }
        let actual = byteLevel["use_regex"]?.bool ?? true
        guard actual == usesRegex else {
            throw .unsupportedFeature(
                file: file, field: "\(field).use_regex", value: "\(actual)",
                supported: "\(usesRegex) in this position")
        }
    }
}

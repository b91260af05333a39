// Construction from Hugging Face `tokenizer.json` (+ optional `tokenizer_config.json`), the format
// of HF `tokenizers` (`Tokenizer::from_file`). Only what a byte-level BPE model needs is supported:
// a `BPE` model, no normalizer, a `ByteLevel` pre-tokenizer alone or after `Digits` (SmolLM) or a
// Llama-3 / Qwen2 `Split`, and `added_tokens`. Anything else is rejected with the field's name
// rather than silently tokenizing differently from the reference.

import Foundation

extension Tokenizer {
    /// Builds a tokenizer from a Hugging Face `tokenizer.json`, and takes bos / eos / pad / unk
    /// and the chat template from `tokenizer_config.json` when given.
    ///
    /// - Throws: `TokenizerError` naming the file and field for unreadable files, invalid JSON,
    ///   missing or mistyped fields, unsupported features (normalizers, non-BPE models, other
    ///   pre-tokenizers, byte fallback, dropout, …) and merges that name unknown tokens.
    public convenience init(tokenizerJSON: URL, tokenizerConfig: URL? = nil) throws(TokenizerError) {
        let json = try Self.readFile(tokenizerJSON)
        let config = try tokenizerConfig.map { url throws(TokenizerError) in try Self.readFile(url) }
        try self.init(
            tokenizerJSONData: json, tokenizerConfigData: config,
            fileNames: (tokenizerJSON.lastPathComponent, tokenizerConfig?.lastPathComponent))
    }

    /// Builds a tokenizer from the contents of `tokenizer.json` and `tokenizer_config.json`.
    public convenience init(
        tokenizerJSONData: Data, tokenizerConfigData: Data? = nil
    ) throws(TokenizerError) {
        try self.init(
            tokenizerJSONData: tokenizerJSONData, tokenizerConfigData: tokenizerConfigData,
            fileNames: ("tokenizer.json", "tokenizer_config.json"))
    }

    private convenience init(
        tokenizerJSONData: Data, tokenizerConfigData: Data?, fileNames: (String, String?)
    ) throws(TokenizerError) {
        let file = try decodeJSON(TokenizerFile.self, from: tokenizerJSONData, file: fileNames.0)
        let configName = fileNames.1 ?? "tokenizer_config.json"
        let config = try tokenizerConfigData.map { data throws(TokenizerError) in
            try decodeJSON(TokenizerConfigFile.self, from: data, file: configName)
        }
        try self.init(
            spec: file.spec(
                file: fileNames.0, config: config.map { ($0, configName) }))
    }

    private static func readFile(_ url: URL) throws(TokenizerError) -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw .unreadableFile(path: url.path, reason: error.localizedDescription)
        }
    }
}

/// The pattern strings HF stores for the Llama 3 and Qwen2 `Split` pre-tokenizers.
private let llama3Pattern =
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
private let qwen2Pattern =
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

/// Decodes JSON and turns `DecodingError` into `TokenizerError` naming the file and field.
/// (`JSONDecoder`, not `JSONSerialization`, which on Linux drops a leading U+FEFF from strings.)
func decodeJSON<T: Decodable>(_ type: T.Type, from data: Data, file: String) throws(TokenizerError) -> T {
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch let error as TokenizerError {
        throw error
    } catch let DecodingError.keyNotFound(key, context) {
        throw .missingField(file: file, field: fieldPath(context.codingPath + [key]))
    } catch let DecodingError.typeMismatch(expected, context) {
        throw .invalidField(
            file: file, field: fieldPath(context.codingPath), expected: describe(expected),
            found: context.debugDescription)
    } catch let DecodingError.valueNotFound(expected, context) {
        throw .invalidField(
            file: file, field: fieldPath(context.codingPath), expected: describe(expected),
            found: "null")
    } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
        throw .invalidField(
            file: file, field: fieldPath(context.codingPath), expected: "a valid value",
            found: context.debugDescription)
    } catch let DecodingError.dataCorrupted(context) {
        let reason = context.underlyingError.map { "\($0)" } ?? context.debugDescription
        throw .invalidJSON(file: file, reason: reason)
    } catch {
        throw .invalidJSON(file: file, reason: "\(error)")
    }
}

/// "model.merges[3]" for a coding path.
private func fieldPath(_ path: [any CodingKey]) -> String {
    var text = ""
    for key in path {
        if let index = key.intValue {
            text += "[\(index)]"
        } else {
            text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
        }
    }
    return text.isEmpty ? "(top level)" : text
}

private func describe(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Int.Type: "an integer"
    case is Double.Type: "a number"
    case is Bool.Type: "true or false"
    case is [Any].Type: "an array"
    default: "\(type)".hasPrefix("Dictionary") ? "an object" : "a \(type)"
    }
}

/// A key for decoding objects with arbitrary keys.
private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Any JSON value, for the small polymorphic parts (pre-tokenizer, normalizer, decoder).
enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: AnyKey.self) {
            var object: [String: JSONValue] = [:]
            for key in container.allKeys { object[key.stringValue] = try container.decode(JSONValue.self, forKey: key) }
            self = .object(object)
        } else if var container = try? decoder.unkeyedContainer() {
            var array: [JSONValue] = []
            while !container.isAtEnd { array.append(try container.decode(JSONValue.self)) }
            self = .array(array)
        } else {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Double.self) {
                self = .number(value)
            } else {
                self = .string(try container.decode(String.self))
            }
        }
    }

    subscript(key: String) -> JSONValue? {
        if case let .object(object) = self { return object[key] }
        return nil
    }

    var string: String? {
        if case let .string(value) = self { return value }
        return nil
    }

    var bool: Bool? {
        if case let .bool(value) = self { return value }
        return nil
    }

    var isNull: Bool { self == .null }

    var description: String {
        switch self {
        case .null: "null"
        case let .bool(value): "\(value)"
        case let .number(value): value == value.rounded() && abs(value) < 1e15 ? "\(Int(value))" : "\(value)"
        case let .string(value): "\"\(value)\""
        case let .array(values): "[\(values.map(\.description).joined(separator: ", "))]"
        case let .object(object):
            "{" + object.keys.sorted().map { "\"\($0)\": \(object[$0]!)" }.joined(separator: ", ") + "}"
        }
    }
}

/// A merge rule: "left right" (tokenizers < 0.20) or `["left", "right"]`.
private struct MergeRule: Decodable {
    var left: String
    var right: String
    var isMalformedString: String?

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            if let (left, right) = splitMerge(text) {
                (self.left, self.right) = (left, right)
            } else {
                (self.left, self.right, isMalformedString) = ("", "", text)
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
private struct TokenContent: Decodable {
    var content: String

    init(from decoder: any Decoder) throws {
        if let container = try? decoder.singleValueContainer(), let text = try? container.decode(String.self) {
            content = text
        } else {
            let container = try decoder.container(keyedBy: AnyKey.self)
            content = try container.decode(String.self, forKey: AnyKey("content"))
        }
    }
}

/// `chat_template`: a string, or a list of `{name, template}` (the "default" one is used).
private struct ChatTemplateField: Decodable {
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
                    .init(codingPath: decoder.codingPath, debugDescription: "an empty template list"))
            }
            template = chosen.template
        }
    }
}

private struct TokenizerConfigFile: Decodable {
    var bosToken: TokenContent?
    var eosToken: TokenContent?
    var padToken: TokenContent?
    var unkToken: TokenContent?
    var chatTemplate: ChatTemplateField?

    enum CodingKeys: String, CodingKey {
        case bosToken = "bos_token", eosToken = "eos_token", padToken = "pad_token"
        case unkToken = "unk_token", chatTemplate = "chat_template"
    }
}

/// The parts of `tokenizer.json` a byte-level BPE tokenizer uses. `truncation`, `padding` and
/// `post_processor` are ignored: `encode` never adds special tokens, pads or truncates.
private struct TokenizerFile: Decodable {
    var addedTokens: [AddedTokenEntry]?
    var normalizer: JSONValue?
    var preTokenizer: JSONValue?
    var decoder: JSONValue?
    var model: Model

    enum CodingKeys: String, CodingKey {
        case addedTokens = "added_tokens", normalizer, preTokenizer = "pre_tokenizer", decoder, model
    }

    struct AddedTokenEntry: Decodable {
        var id: Int
        var content: String
        var special: Bool?
        var lstrip: Bool?
        var rstrip: Bool?
        var singleWord: Bool?

        enum CodingKeys: String, CodingKey {
            case id, content, special, lstrip, rstrip, singleWord = "single_word"
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
            case type, vocab, merges, dropout, unkToken = "unk_token"
            case continuingSubwordPrefix = "continuing_subword_prefix"
            case endOfWordSuffix = "end_of_word_suffix", byteFallback = "byte_fallback"
            case ignoreMerges = "ignore_merges"
        }
    }

    /// Ids above this are rejected rather than allocating a huge vocabulary.
    static let maximumTokenID = 1 << 24

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

        var merges: [(left: String, right: String)] = []
        merges.reserveCapacity(model.merges.count)
        for (index, rule) in model.merges.enumerated() {
            if let malformed = rule.isMalformedString {
                throw .malformedMerge(field: "\(file): model.merges", index: index, merge: malformed)
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
        var chatTemplate: String?
        if let (config, configName) = config {
            let fields: [(String, TokenContent?, WritableKeyPath<SpecialTokenIDs, Int?>)] = [
                ("bos_token", config.bosToken, \.bos), ("eos_token", config.eosToken, \.eos),
                ("pad_token", config.padToken, \.pad), ("unk_token", config.unkToken, \.unknown),
            ]
            for (field, token, path) in fields {
                if let token {
                    special[keyPath: path] = try resolve(token.content, file: configName, field: field)
                }
            }
            chatTemplate = config.chatTemplate?.template
        }
        return TokenizerSpec(
            tokens: tokens, tokenTypes: types, merges: merges, tokensField: "\(file): model.vocab",
            mergesField: "\(file): model.merges", addedTokens: addedTokens, specialTokens: special,
            bpeUnknownTokenID: bpeUnknown, preTokenizer: preTokenizer,
            ignoresMerges: model.ignoreMerges ?? false, chatTemplate: chatTemplate)
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
                file: file, field: field, value: value.map { "\($0)" } ?? "absent", supported: supported)
        }
        guard let pre = preTokenizer, !pre.isNull else { throw unsupported("pre_tokenizer", preTokenizer) }
        switch pre["type"]?.string {
        case "ByteLevel":
            try checkByteLevel(pre, field: "pre_tokenizer", usesRegex: true, file: file)
            return .gpt2
        case "Sequence":
            guard case let .array(steps)? = pre["pretokenizers"] else {
                throw unsupported("pre_tokenizer.pretokenizers", pre["pretokenizers"])
            }
            let stepTypes = steps.map { $0["type"]?.string ?? "?" }
            switch stepTypes {
            case ["Digits", "ByteLevel"]:
                guard steps[0]["individual_digits"]?.bool == true else {
                    throw unsupported(
                        "pre_tokenizer.pretokenizers[0].individual_digits", steps[0]["individual_digits"])
                }
                try checkByteLevel(steps[1], field: "pre_tokenizer.pretokenizers[1]", usesRegex: true, file: file)
                return .smollm
            case ["Split", "ByteLevel"]:
                let split = steps[0]
                guard split["behavior"]?.string == "Isolated", split["invert"]?.bool != true else {
                    throw unsupported("pre_tokenizer.pretokenizers[0].behavior", split["behavior"])
                }
                try checkByteLevel(steps[1], field: "pre_tokenizer.pretokenizers[1]", usesRegex: false, file: file)
                let pattern = split["pattern"]?["Regex"] ?? split["pattern"]?["String"]
                switch pattern?.string {
                case llama3Pattern?: return .llama3
                case qwen2Pattern?: return .qwen2
                default: throw unsupported("pre_tokenizer.pretokenizers[0].pattern", split["pattern"])
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

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
        let root = try JSONObject.parse(tokenizerJSONData, file: fileNames.0)
        let config = try tokenizerConfigData.map { data throws(TokenizerError) in
            try JSONObject.parse(data, file: fileNames.1 ?? "tokenizer_config.json")
        }
        try self.init(spec: HuggingFaceTokenizerFile.spec(root: root, config: config))
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

private enum HuggingFaceTokenizerFile {
    /// Ids above this are rejected rather than allocating a huge vocabulary.
    static let maximumTokenID = 1 << 24

    static func spec(root: JSONObject, config: JSONObject?) throws(TokenizerError) -> TokenizerSpec {
        if let normalizer = try root.optionalObject("normalizer") {
            throw unsupported(normalizer, "type", supported: "null (no normalizer)")
        }
        let preTokenizer = try preTokenizerKind(root)
        if let decoder = try root.optionalObject("decoder") {
            let type = try decoder.string("type")
            guard type == "ByteLevel" else {
                throw unsupported(decoder, "type", supported: "ByteLevel or null")
            }
        }
        let model = try root.object("model")
        let modelType = try model.optionalString("type") ?? "BPE"
        guard modelType == "BPE" else { throw unsupported(model, "type", supported: "BPE") }
        if let dropout = try model.optionalDouble("dropout"), dropout != 0 {
            throw .unsupportedFeature(
                file: model.file, field: model.field("dropout"), value: "\(dropout)",
                supported: "null or 0")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = try model.optionalString(key), !value.isEmpty {
                throw .unsupportedFeature(
                    file: model.file, field: model.field(key), value: "\"\(value)\"",
                    supported: "null or \"\"")
            }
        }
        if try model.bool("byte_fallback", default: false) {
            throw .unsupportedFeature(
                file: model.file, field: model.field("byte_fallback"), value: "true",
                supported: "false (byte-level BPE needs no fallback)")
        }

        var tokens: [String] = []
        var types: [TokenType] = []
        func place(_ token: String, id: Int, type: TokenType, field: String) throws(TokenizerError) {
            guard (0..<maximumTokenID).contains(id) else {
                throw .invalidField(
                    file: model.file, field: field, expected: "an id in 0..<\(maximumTokenID)",
                    found: "\(id)")
            }
            if id >= tokens.count {
                tokens.append(contentsOf: repeatElement("", count: id + 1 - tokens.count))
                types.append(contentsOf: repeatElement(.unused, count: id + 1 - types.count))
            }
            tokens[id] = token
            types[id] = type
        }
        let vocab = try model.object("vocab")
        for (token, value) in vocab.values {
            let field = vocab.field(token)
            guard let id = value as? Int else {
                throw .invalidField(
                    file: vocab.file, field: field, expected: "an integer id", found: describe(value))
            }
            if id < tokens.count && types[id] != .unused {
                throw .invalidField(
                    file: vocab.file, field: field, expected: "a unique id",
                    found: "\(id), also used by \"\(tokens[id])\"")
            }
            try place(token, id: id, type: .normal, field: field)
        }
        guard !tokens.isEmpty else { throw .emptyVocabulary(field: vocab.field("")) }

        var addedTokens: [AddedToken] = []
        for (index, entry) in try root.optionalArrayOfObjects("added_tokens").enumerated() {
            let id = try entry.int("id")
            let token = AddedToken(
                id: id, content: try entry.string("content"),
                isSpecial: try entry.bool("special", default: false),
                stripsLeft: try entry.bool("lstrip", default: false),
                stripsRight: try entry.bool("rstrip", default: false),
                isSingleWord: try entry.bool("single_word", default: false))
            try place(
                token.content, id: id, type: token.isSpecial ? .control : .userDefined,
                field: "added_tokens[\(index)].id")
            addedTokens.append(token)
        }

        let merges = try parseMerges(model)
        var tokenIDs: [String: Int] = [:]
        for (id, token) in tokens.enumerated() where !token.isEmpty { tokenIDs[token] = id }
        var special = SpecialTokenIDs()
        if let unknown = try model.optionalString("unk_token") {
            special.unknown = try resolve(unknown, in: tokenIDs, file: model.file, field: model.field("unk_token"))
        }
        var chatTemplate: String?
        if let config {
            for (key, path) in [("bos_token", \SpecialTokenIDs.bos), ("eos_token", \.eos),
                                ("pad_token", \.pad), ("unk_token", \.unknown)] {
                if let token = try config.tokenContent(key) {
                    special[keyPath: path] = try resolve(token, in: tokenIDs, file: config.file, field: key)
                }
            }
            chatTemplate = try config.chatTemplate()
        }
        return TokenizerSpec(
            tokens: tokens, tokenTypes: types, merges: merges, tokensField: vocab.path,
            mergesField: model.field("merges"), addedTokens: addedTokens, specialTokens: special,
            preTokenizer: preTokenizer, ignoresMerges: try model.bool("ignore_merges", default: false),
            chatTemplate: chatTemplate)
    }

    private static func preTokenizerKind(_ root: JSONObject) throws(TokenizerError) -> PreTokenizerKind {
        let supported =
            "ByteLevel(use_regex: true), Sequence[Digits(individual_digits: true), ByteLevel], "
            + "or Sequence[Split(Llama 3 or Qwen2 regex, Isolated), ByteLevel(use_regex: false)]"
        guard let pre = try root.optionalObject("pre_tokenizer") else {
            throw .unsupportedFeature(
                file: root.file, field: "pre_tokenizer", value: "null", supported: supported)
        }
        let type = try pre.string("type")
        if type == "ByteLevel" {
            try checkByteLevel(pre, usesRegex: true, supported: supported)
            return .gpt2
        }
        guard type == "Sequence" else { throw unsupported(pre, "type", supported: supported) }
        let steps = try pre.optionalArrayOfObjects("pretokenizers")
        let types = try steps.map { step throws(TokenizerError) in try step.string("type") }
        switch types {
        case ["Digits", "ByteLevel"]:
            guard try steps[0].bool("individual_digits", default: false) else {
                throw .unsupportedFeature(
                    file: root.file, field: steps[0].field("individual_digits"), value: "false",
                    supported: "true")
            }
            try checkByteLevel(steps[1], usesRegex: true, supported: supported)
            return .smollm
        case ["Split", "ByteLevel"]:
            let split = steps[0]
            let pattern = try split.object("pattern")
            var regex = try pattern.optionalString("Regex")
            if regex == nil { regex = try pattern.optionalString("String") }
            let behavior = try split.optionalString("behavior") ?? ""
            guard behavior == "Isolated", try !split.bool("invert", default: false) else {
                throw .unsupportedFeature(
                    file: root.file, field: split.field("behavior"), value: "\"\(behavior)\"",
                    supported: "\"Isolated\" with invert = false")
            }
            try checkByteLevel(steps[1], usesRegex: false, supported: supported)
            switch regex ?? "" {
            case llama3Pattern: return .llama3
            case qwen2Pattern: return .qwen2
            default:
                throw .unsupportedFeature(
                    file: root.file, field: pattern.field("Regex"), value: "\"\(regex ?? "")\"",
                    supported: "the Llama 3 or Qwen2 pre-tokenizer regex")
            }
        default:
            throw .unsupportedFeature(
                file: root.file, field: pre.field("pretokenizers"),
                value: "[\(types.joined(separator: ", "))]", supported: supported)
        }
    }

    private static func checkByteLevel(
        _ byteLevel: JSONObject, usesRegex: Bool, supported: String
    ) throws(TokenizerError) {
        if try byteLevel.bool("add_prefix_space", default: false) {
            throw .unsupportedFeature(
                file: byteLevel.file, field: byteLevel.field("add_prefix_space"), value: "true",
                supported: "false")
        }
        let actual = try byteLevel.bool("use_regex", default: true)
        guard actual == usesRegex else {
            throw .unsupportedFeature(
                file: byteLevel.file, field: byteLevel.field("use_regex"), value: "\(actual)",
                supported: "\(usesRegex) here (\(supported))")
        }
    }

    /// `model.merges`: "left right" strings (tokenizers < 0.20) or `[left, right]` pairs.
    private static func parseMerges(
        _ model: JSONObject
    ) throws(TokenizerError) -> [(left: String, right: String)] {
        guard let raw = model.values["merges"] else {
            throw .missingField(file: model.file, field: model.field("merges"))
        }
        guard let array = raw as? [Any] else {
            throw .invalidField(
                file: model.file, field: model.field("merges"), expected: "an array",
                found: describe(raw))
        }
        var merges: [(left: String, right: String)] = []
        merges.reserveCapacity(array.count)
        for (index, element) in array.enumerated() {
            if let text = element as? String {
                guard let pair = splitMerge(text) else {
                    throw .malformedMerge(field: model.field("merges"), index: index, merge: text)
                }
                merges.append(pair)
            } else if let pair = element as? [Any], pair.count == 2,
                let left = pair[0] as? String, let right = pair[1] as? String
            {
                merges.append((left, right))
            } else {
                throw .invalidField(
                    file: model.file, field: "\(model.field("merges"))[\(index)]",
                    expected: "a string \"left right\" or a pair [left, right]",
                    found: describe(element))
            }
        }
        return merges
    }

    private static func resolve(
        _ token: String, in tokenIDs: [String: Int], file: String, field: String
    ) throws(TokenizerError) -> Int {
        guard let id = tokenIDs[token] else {
            throw .unknownSpecialToken(file: file, field: field, token: token)
        }
        return id
    }

    private static func unsupported(
        _ object: JSONObject, _ key: String, supported: String
    ) -> TokenizerError {
        let value = object.values[key].map(describe) ?? "absent"
        return .unsupportedFeature(
            file: object.file, field: object.field(key), value: value, supported: supported)
    }
}

/// A JSON object from `JSONSerialization` with typed accessors whose errors name file and field.
struct JSONObject {
    let file: String
    /// Dotted path of this object in the file ("" for the root).
    let path: String
    let values: [String: Any]

    static func parse(_ data: Data, file: String) throws(TokenizerError) -> JSONObject {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw .invalidJSON(file: file, reason: "\(error)")
        }
        guard let values = value as? [String: Any] else {
            throw .invalidJSON(file: file, reason: "the top level is \(describe(value)), not an object")
        }
        return JSONObject(file: file, path: "", values: values)
    }

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func present(_ key: String) -> Any? {
        guard let value = values[key], !(value is NSNull) else { return nil }
        return value
    }

    private func typed<T>(_ key: String, _ expected: String) throws(TokenizerError) -> T? {
        guard let value = present(key) else { return nil }
        guard let typed = value as? T else {
            throw .invalidField(file: file, field: field(key), expected: expected, found: describe(value))
        }
        return typed
    }

    func string(_ key: String) throws(TokenizerError) -> String {
        guard let value: String = try typed(key, "a string") else {
            throw .missingField(file: file, field: field(key))
        }
        return value
    }

    func optionalString(_ key: String) throws(TokenizerError) -> String? {
        try typed(key, "a string")
    }

    func int(_ key: String) throws(TokenizerError) -> Int {
        guard let value: Int = try typed(key, "an integer") else {
            throw .missingField(file: file, field: field(key))
        }
        return value
    }

    func optionalDouble(_ key: String) throws(TokenizerError) -> Double? {
        try typed(key, "a number")
    }

    func bool(_ key: String, default defaultValue: Bool) throws(TokenizerError) -> Bool {
        guard let value = present(key) else { return defaultValue }
        guard let number = value as? NSNumber, value is Bool || number.intValue == 0 || number.intValue == 1,
            !(value is String)
        else {
            throw .invalidField(file: file, field: field(key), expected: "true or false", found: describe(value))
        }
        return number.boolValue
    }

    func object(_ key: String) throws(TokenizerError) -> JSONObject {
        guard let object = try optionalObject(key) else {
            throw .missingField(file: file, field: field(key))
        }
        return object
    }

    func optionalObject(_ key: String) throws(TokenizerError) -> JSONObject? {
        guard let values: [String: Any] = try typed(key, "an object") else { return nil }
        return JSONObject(file: file, path: field(key), values: values)
    }

    /// An array of objects; absent or null reads as empty.
    func optionalArrayOfObjects(_ key: String) throws(TokenizerError) -> [JSONObject] {
        guard let array: [Any] = try typed(key, "an array") else { return [] }
        var objects: [JSONObject] = []
        for (index, element) in array.enumerated() {
            let elementField = "\(field(key))[\(index)]"
            guard let values = element as? [String: Any] else {
                throw .invalidField(file: file, field: elementField, expected: "an object", found: describe(element))
            }
            objects.append(JSONObject(file: file, path: elementField, values: values))
        }
        return objects
    }

    /// A `tokenizer_config.json` token field: a string, an AddedToken object with "content", or null.
    func tokenContent(_ key: String) throws(TokenizerError) -> String? {
        guard let value = present(key) else { return nil }
        if let text = value as? String { return text }
        if let object = value as? [String: Any], let content = object["content"] as? String {
            return content
        }
        throw .invalidField(
            file: file, field: field(key), expected: "a string or an object with \"content\"",
            found: describe(value))
    }

    /// `chat_template`: a string, or a list of `{name, template}` (the "default" one is taken).
    func chatTemplate() throws(TokenizerError) -> String? {
        guard let value = present("chat_template") else { return nil }
        if let text = value as? String { return text }
        if let list = value as? [[String: Any]] {
            let chosen = list.first { $0["name"] as? String == "default" } ?? list.first
            if let template = chosen?["template"] as? String { return template }
        }
        throw .invalidField(
            file: file, field: field("chat_template"),
            expected: "a string or a list of {\"name\", \"template\"}", found: describe(value))
    }
}

/// A short description of a JSON value for error messages.
private func describe(_ value: Any) -> String {
    switch value {
    case is NSNull: return "null"
    case let text as String:
        return text.count > 40 ? "a string \"\(text.prefix(40))…\"" : "the string \"\(text)\""
    case let number as NSNumber: return "the number \(number)"
    case is [Any]: return "an array"
    case is [String: Any]: return "an object"
    default: return "\(type(of: value))"
    }
}

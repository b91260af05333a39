// Errors thrown while building a tokenizer from GGUF metadata arrays or from Hugging Face
// `tokenizer.json` / `tokenizer_config.json`. Every case names the file or metadata field and what
// was expected, so the message alone is enough to fix the input (house style, section 5).

/// Why a tokenizer could not be built.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A file could not be read at all.
    case unreadableFile(path: String, reason: String)
    /// A file is not valid JSON, or its top level is not an object.
    case invalidJSON(file: String, reason: String)
    /// A required field is absent.
    case missingField(file: String, field: String)
    /// A field is present but has the wrong JSON type or an out-of-range value.
    case invalidField(file: String, field: String, expected: String, found: String)
    /// A field selects a feature this implementation does not provide.
    case unsupportedFeature(file: String, field: String, value: String, supported: String)
    /// A pre-tokenizer name (GGUF `tokenizer.ggml.pre`) that has no implementation here.
    case unsupportedPreTokenizer(name: String, supported: [String])
    /// The vocabulary is empty.
    case emptyVocabulary(field: String)
    /// A merge rule is not two tokens separated by one space.
    case malformedMerge(field: String, index: Int, merge: String)
    /// A merge rule names a token, or produces a token, that is not in the vocabulary.
    case mergeReferencesUnknownToken(field: String, index: Int, merge: String, token: String)
    /// Token types were given but not one per token.
    case tokenTypeCountMismatch(tokens: Int, tokenTypes: Int)
    /// A token type outside llama.cpp's `llama_token_type` range 0...6.
    case invalidTokenType(index: Int, value: Int32)
    /// A special token id (bos, eos, pad, unk) outside the vocabulary.
    case specialTokenIDOutOfRange(role: String, id: Int, vocabularySize: Int)
    /// A special token named by its text that is not in the vocabulary.
    case unknownSpecialToken(file: String, field: String, token: String)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason):
            "Cannot read tokenizer file '\(path)': \(reason)."
        case let .invalidJSON(file, reason):
            "\(file) is not a valid JSON object: \(reason)."
        case let .missingField(file, field):
            "\(file): required field '\(field)' is missing."
        case let .invalidField(file, field, expected, found):
            "\(file): '\(field)' should be \(expected) but is \(found)."
        case let .unsupportedFeature(file, field, value, supported):
            "\(file): '\(field)' = \(value) is not supported (supported: \(supported))."
        case let .unsupportedPreTokenizer(name, supported):
            "Pre-tokenizer '\(name)' is not supported (supported: \(supported.joined(separator: ", "))). "
                + "Hint: check the GGUF's 'tokenizer.ggml.pre' value."
        case let .emptyVocabulary(field):
            "'\(field)' holds no tokens; a tokenizer needs a vocabulary."
        case let .malformedMerge(field, index, merge):
            "\(field)[\(index)] = \"\(merge)\" is not two tokens separated by a space."
        case let .mergeReferencesUnknownToken(field, index, merge, token):
            "\(field)[\(index)] = \"\(merge)\" needs token \"\(token)\", which is not in the vocabulary."
        case let .tokenTypeCountMismatch(tokens, tokenTypes):
            "tokenizer.ggml.token_type has \(tokenTypes) entries but tokenizer.ggml.tokens has \(tokens); "
                + "there must be one type per token."
        case let .invalidTokenType(index, value):
            "tokenizer.ggml.token_type[\(index)] = \(value) is not a llama.cpp token type (0...6)."
        case let .specialTokenIDOutOfRange(role, id, vocabularySize):
            "The \(role) token id \(id) is outside the vocabulary (0..<\(vocabularySize))."
        case let .unknownSpecialToken(file, field, token):
            "\(file): '\(field)' names \"\(token)\", which is not in the vocabulary or added_tokens."
        }
    }
}

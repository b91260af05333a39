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
        case .unreadableFile(let path, let reason):
            "Cannot read tokenizer file '\(path)': \(reason)."
        case .invalidJSON(let file, let reason):
            "\(file) is not a valid JSON object: \(reason)."
        case .missingField(let file, let field):
            "\(file): required field '\(field)' is missing."
        case .invalidField(let file, let field, let expected, let found):
            "\(file): '\(field)' should be \(expected) but is \(found)."
        case .unsupportedFeature(let file, let field, let value, let supported):
            "\(file): '\(field)' = \(value) is not supported (supported: \(supported))."
        case .unsupportedPreTokenizer(let name, let supported):
            "Pre-tokenizer '\(name)' is not supported "
                + "(supported: \(supported.joined(separator: ", "))). "
                + "Hint: check the GGUF's 'tokenizer.ggml.pre' value."
        case .emptyVocabulary(let field):
            "'\(field)' holds no tokens; a tokenizer needs a vocabulary."
        case .malformedMerge(let field, let index, let merge):
            "\(field)[\(index)] = \"\(merge)\" is not two tokens separated by a space."
        case .mergeReferencesUnknownToken(let field, let index, let merge, let token):
            "\(field)[\(index)] = \"\(merge)\" needs token \"\(token)\", "
                + "which is not in the vocabulary."
        case .tokenTypeCountMismatch(let tokens, let tokenTypes):
            "tokenizer.ggml.token_type has \(tokenTypes) entries but tokenizer.ggml.tokens has "
                + "\(tokens); there must be one type per token."
        case .invalidTokenType(let index, let value):
            "tokenizer.ggml.token_type[\(index)] = \(value) is not a llama.cpp token type (0...6)."
        case .specialTokenIDOutOfRange(let role, let id, let vocabularySize):
            "The \(role) token id \(id) is outside the vocabulary (0..<\(vocabularySize))."
        case .unknownSpecialToken(let file, let field, let token):
            "\(file): '\(field)' names \"\(token)\", "
                + "which is not in the vocabulary or added_tokens."
        }
    }
}

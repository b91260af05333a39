// Construction from the tokenizer arrays of a GGUF file (`tokenizer.ggml.tokens`, `.merges`,
// `.token_type`, special ids), with llama.cpp's meaning of token types: control and unknown tokens
// are special, user-defined tokens are always-matched added tokens (llama.cpp `llama_vocab::load`).

extension Tokenizer {
    /// Builds a tokenizer from the arrays a GGUF file stores (`tokenizer.ggml.tokens`,
    /// `tokenizer.ggml.merges`, `tokenizer.ggml.token_type`, …).
    ///
    /// - Parameters:
    ///   - tokens: Byte-level token strings; the index is the id.
    ///   - merges: Merge rules "left right"; the index is the rank (lower merges first).
    ///   - tokenTypes: llama.cpp token types (1 normal, 2 unknown, 3 control, 4 user-defined,
    ///     5 unused, 6 byte), one per token. Control and unknown tokens are special: matched in
    ///     text only with `parseSpecialTokens: true`. User-defined tokens are always matched.
    ///     When nil, the tokens named in `specialTokens` are treated as control tokens.
    ///   - specialTokens: bos / eos / pad / unk ids.
    ///   - preTokenizer: The word-splitting rule (see `PreTokenizerKind(ggufName:)`).
    ///   - ignoresMerges: Whether words that are whole tokens skip merging; nil picks llama.cpp's
    ///     default for the kind (true for `.llama3` only).
    ///   - chatTemplate: `tokenizer.chat_template`, kept for callers.
    /// - Throws: `TokenizerError` for an empty vocabulary, bad token types, special ids out of
    ///   range, or merges that are malformed or name unknown tokens.
    ///
    /// Bytes that have no single-byte token are dropped when encoding, as llama.cpp does
    /// (SmolLM2 lacks 21 of the 256, e.g. 0x04 and 0xF5-0xFF).
    public convenience init(
        tokens: [String],
        merges: [String],
        tokenTypes: [Int32]? = nil,
        specialTokens: SpecialTokenIDs = SpecialTokenIDs(),
        preTokenizer: PreTokenizerKind,
        ignoresMerges: Bool? = nil,
        chatTemplate: String? = nil
    ) throws(TokenizerError) {
        var types = [TokenType](repeating: .normal, count: tokens.count)
        if let tokenTypes {
            guard tokenTypes.count == tokens.count else {
                throw .tokenTypeCountMismatch(tokens: tokens.count, tokenTypes: tokenTypes.count)
            }
            for (index, raw) in tokenTypes.enumerated() {
                guard let type = TokenType(rawValue: raw) else {
                    throw .invalidTokenType(index: index, value: raw)
                }
                types[index] = type
            }
        } else {
            let roles = [
                specialTokens.bos, specialTokens.eos, specialTokens.pad, specialTokens.unknown,
            ]
            for case let id? in roles where tokens.indices.contains(id) { types[id] = .control }
        }
        var addedTokens: [AddedToken] = []
        for (id, type) in types.enumerated() {
            switch type {
            case .control, .unknown:
                addedTokens.append(AddedToken(id: id, content: tokens[id], isSpecial: true))
            case .userDefined:
                addedTokens.append(AddedToken(id: id, content: tokens[id], isSpecial: false))
            default: break
            }
        }
        var parsedMerges: [(left: String, right: String)] = []
        parsedMerges.reserveCapacity(merges.count)
        for (index, merge) in merges.enumerated() {
            guard let (left, right) = splitMerge(merge) else {
                throw .malformedMerge(field: "tokenizer.ggml.merges", index: index, merge: merge)
            }
            parsedMerges.append((left, right))
        }
        // Bytes without a token are dropped, as llama.cpp does, so there is no BPE unk token.
        try self.init(
            spec: TokenizerSpec(
                tokens: tokens, tokenTypes: types, merges: parsedMerges,
                tokensField: "tokenizer.ggml.tokens", mergesField: "tokenizer.ggml.merges",
                addedTokens: addedTokens, specialTokens: specialTokens, bpeUnknownTokenID: nil,
                preTokenizer: preTokenizer,
                ignoresMerges: ignoresMerges ?? (preTokenizer == .llama3),
                chatTemplate: chatTemplate))
    }
}

/// Splits a merge rule "left right" at the first space after its first byte, as llama.cpp does
/// (`find(' ', 1)`), so a rule may merge a token that starts with a space.
func splitMerge(_ merge: String) -> (left: String, right: String)? {
    let utf8 = merge.utf8
    guard utf8.count >= 3,
        let space = utf8[utf8.index(after: utf8.startIndex)...].firstIndex(of: UInt8(ascii: " "))
    else { return nil }
    let rightStart = utf8.index(after: space)
    guard rightStart < utf8.endIndex else { return nil }
    return (String(merge[..<space]), String(merge[rightStart...]))
}

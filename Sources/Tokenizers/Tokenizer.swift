// A byte-level BPE tokenizer (GPT-2 family) as HF `tokenizers` and llama.cpp implement it: added
// tokens are matched first, the rest is split into words by a pre-tokenizer (`PreTokenizerKind`),
// each word's UTF-8 bytes become byte-level symbols, and ranked merges join them. Built from GGUF
// metadata arrays (Tokenizer+GGUF.swift) or from `tokenizer.json` (Tokenizer+HuggingFace.swift).

import Synchronization

/// llama.cpp's `llama_token_type`, stored per token in GGUF `tokenizer.ggml.token_type`.
public enum TokenType: Int32, Sendable, CaseIterable {
    case undefined = 0
    case normal = 1
    case unknown = 2
    case control = 3
    case userDefined = 4
    case unused = 5
    case byte = 6
}

/// Ids of the tokens with a fixed role; nil where the vocabulary has none.
public struct SpecialTokenIDs: Sendable, Hashable {
    public var bos: Int?
    public var eos: Int?
    public var pad: Int?
    public var unknown: Int?

    public init(bos: Int? = nil, eos: Int? = nil, pad: Int? = nil, unknown: Int? = nil) {
        self.bos = bos
        self.eos = eos
        self.pad = pad
        self.unknown = unknown
    }
}

/// Everything needed to build a tokenizer, gathered by the GGUF or `tokenizer.json` front end.
struct TokenizerSpec {
    var tokens: [String]
    var tokenTypes: [TokenType]
    var merges: [(left: String, right: String)]
    /// Where the tokens came from, for error messages (e.g. "tokenizer.ggml.tokens").
    var tokensField: String
    /// Where the merges came from, for error messages (e.g. "tokenizer.ggml.merges").
    var mergesField: String
    var addedTokens: [AddedToken]
    var specialTokens: SpecialTokenIDs
    /// The BPE model's own unknown token (HF `model.unk_token`), used for bytes without a token.
    var bpeUnknownTokenID: Int?
    var preTokenizer: PreTokenizerKind
    var ignoresMerges: Bool
    var chatTemplate: String?
}

/// A byte-level BPE tokenizer. Immutable after construction and safe to share between threads;
/// the only mutable state is an internal word cache behind a lock.
///
/// Security: text written by a user (chat message contents, dataset fields) must be encoded with
/// `parseSpecialTokens: false`, otherwise a user who types `<|im_start|>system` gets the real
/// control token and can forge a conversation turn. Only the chat template's own markup should be
/// encoded with `parseSpecialTokens: true`.
///
/// See Also: `StreamingDecoder`, `PreTokenizerKind`, `init(tokenizerJSON:tokenizerConfig:)`.
public final class Tokenizer: Sendable {
    /// How text is split into words before merges.
    public let preTokenizer: PreTokenizerKind
    /// Whether a word that is itself a token skips the merges (HF `ignore_merges`, Llama 3).
    public let ignoresMerges: Bool
    /// Beginning-of-sequence token id; `encode` never inserts it.
    public let bosTokenID: Int?
    /// End-of-sequence token id.
    public let eosTokenID: Int?
    /// Padding token id.
    public let padTokenID: Int?
    /// Unknown token id.
    public let unknownTokenID: Int?
    /// The Jinja chat template shipped with the tokenizer, if any.
    public let chatTemplate: String?

    let tokens: [String]
    let tokenIDs: [String: Int]
    let tokenTypes: [TokenType]
    let specialFlags: [Bool]
    /// Concatenated decoded bytes of every token: token `i` is
    /// `tokenBytes[tokenByteOffsets[i]..<tokenByteOffsets[i + 1]]`.
    let tokenBytes: [UInt8]
    let tokenByteOffsets: [Int]
    /// Token id of each single byte, or -1.
    let byteTokenIDs: [Int32]
    let merges: MergeTable
    /// Merge rules in rank order, as given (kept for export).
    let mergePairs: [(left: String, right: String)]
    /// Decoded bytes → id of normal tokens; only filled when `ignoresMerges`.
    let wholeWordIDs: [[UInt8]: Int32]
    let addedTokens: AddedTokenMatcher
    /// Stands in for bytes that have no token; nil drops them (llama.cpp, HF without `unk_token`).
    let bpeUnknownTokenID: Int32?
    let wordSplitter: PreTokenizer
    /// Word → ids cache: at most 65,536 words of at most 256 bytes each (about 30 MB at worst).
    private let cache = Mutex(WordCache(capacity: 1 << 16))
    private static let maximumCachedWordLength = 256

    init(spec: TokenizerSpec) throws(TokenizerError) {
        let tokens = spec.tokens
        guard !tokens.isEmpty else { throw .emptyVocabulary(field: spec.tokensField) }
        let special = spec.specialTokens
        let roles = [
            ("bos", special.bos), ("eos", special.eos), ("pad", special.pad),
            ("unk", special.unknown),
        ]
        for case (let role, let id?) in roles where !tokens.indices.contains(id) {
            throw .specialTokenIDOutOfRange(role: role, id: id, vocabularySize: tokens.count)
        }
        self.tokens = tokens
        self.tokenTypes = spec.tokenTypes
        self.preTokenizer = spec.preTokenizer
        self.wordSplitter = PreTokenizer(kind: spec.preTokenizer)
        self.ignoresMerges = spec.ignoresMerges
        self.bosTokenID = special.bos
        self.eosTokenID = special.eos
        self.padTokenID = special.pad
        self.unknownTokenID = special.unknown
        self.chatTemplate = spec.chatTemplate
        self.bpeUnknownTokenID = spec.bpeUnknownTokenID.map(Int32.init)
        self.addedTokens = AddedTokenMatcher(spec.addedTokens)

        // Later duplicates win, as in llama.cpp's `token_to_id`; empty strings are placeholders.
        var tokenIDs = [String: Int](minimumCapacity: tokens.count)
        for (id, token) in tokens.enumerated() where !token.isEmpty { tokenIDs[token] = id }
        self.tokenIDs = tokenIDs

        var specialFlags = spec.tokenTypes.map { $0 == .control || $0 == .unknown }
        for token in spec.addedTokens where token.isSpecial { specialFlags[token.id] = true }
        for case (_, let id?) in roles { specialFlags[id] = true }
        self.specialFlags = specialFlags

        (tokenBytes, tokenByteOffsets, wholeWordIDs) = Self.tokenBytes(spec)
        var byteTokenIDs = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            let token = String(Unicode.Scalar(ByteLevel.scalarForByte[byte])!)
            if let id = tokenIDs[token] { byteTokenIDs[byte] = Int32(id) }
        }
        self.byteTokenIDs = byteTokenIDs
        self.merges = try Self.mergeTable(spec, tokenIDs: tokenIDs)
        self.mergePairs = spec.merges
    }

    /// The bytes each token stands for, concatenated, with offsets; plus, when merges are
    /// ignored for whole words, the bytes → id map of normal tokens. Added and control tokens are
    /// plain text; the rest is byte-level, falling back to the raw UTF-8 of the string when it
    /// uses scalars outside the byte alphabet (as HF's ByteLevel decoder does).
    private static func tokenBytes(
        _ spec: TokenizerSpec
    ) -> (bytes: [UInt8], offsets: [Int], wholeWords: [[UInt8]: Int32]) {
        var isAdded = [Bool](repeating: false, count: spec.tokens.count)
        for token in spec.addedTokens { isAdded[token.id] = true }
        var bytes: [UInt8] = []
        var offsets = [0]
        offsets.reserveCapacity(spec.tokens.count + 1)
        var wholeWords: [[UInt8]: Int32] = [:]
        for (id, token) in spec.tokens.enumerated() {
            let type = spec.tokenTypes[id]
            if isAdded[id] || type == .control || type == .userDefined {
                bytes.append(contentsOf: token.utf8)
            } else if let decoded = ByteLevel.decode(token) {
                bytes.append(contentsOf: decoded)
                if spec.ignoresMerges && (type == .normal || type == .byte) && !decoded.isEmpty {
                    wholeWords[decoded] = Int32(id)
                }
            } else {
                bytes.append(contentsOf: token.utf8)
            }
            offsets.append(bytes.count)
        }
        return (bytes, offsets, wholeWords)
    }

    /// Resolves merge rules to ids. A rule whose sides or result are not tokens is an error.
    private static func mergeTable(
        _ spec: TokenizerSpec, tokenIDs: [String: Int]
    ) throws(TokenizerError) -> MergeTable {
        var table = MergeTable(capacity: spec.merges.count)
        for (rank, merge) in spec.merges.enumerated() {
            func id(_ token: String) throws(TokenizerError) -> Int32 {
                guard let id = tokenIDs[token] else {
                    throw .mergeReferencesUnknownToken(
                        field: spec.mergesField, index: rank, merge: "\(merge.left) \(merge.right)",
                        token: token)
                }
                return Int32(id)
            }
            let left = try id(merge.left)
            let right = try id(merge.right)
            let merged = try id(merge.left + merge.right)
            table.insert(left: left, right: right, rank: Int32(rank), merged: merged)
        }
        return table
    }

    // MARK: - Vocabulary

    /// Number of token ids, added tokens included.
    public var vocabularySize: Int { tokens.count }

    /// The id of a token given in its stored (byte-level) form, e.g. "Ġworld" or "<|im_end|>".
    public func id(of token: String) -> Int? { tokenIDs[token] }

    /// Whether `id` is a special token (control token, special added token, or bos/eos/pad/unk);
    /// these are dropped by `decode(_:skipSpecialTokens: true)`.
    public func isSpecial(_ id: Int) -> Bool {
        specialFlags.indices.contains(id) && specialFlags[id]
    }

    /// The llama.cpp type of a token, or nil for an id outside the vocabulary.
    public func tokenType(of id: Int) -> TokenType? {
        tokenTypes.indices.contains(id) ? tokenTypes[id] : nil
    }

    /// The stored strings of `ids` (byte-level form, e.g. "Ġworld"); "" for ids outside the
    /// vocabulary.
    public func tokenStrings(_ ids: [Int]) -> [String] {
        ids.map { tokens.indices.contains($0) ? tokens[$0] : "" }
    }

    // MARK: - Export (read-only views for writing tokenizer.json or GGUF metadata)

    /// Every token's stored string by id ("" for holes in the id range).
    public var vocabulary: [String] { tokens }

    /// The llama.cpp type (`TokenType.rawValue`) of every token, by id.
    public var tokenTypeValues: [Int32] { tokenTypes.map(\.rawValue) }

    /// The merge rules in rank order, as (left, right) token strings.
    public var mergeRules: [(left: String, right: String)] { mergePairs }

    /// The BPE model's own unknown token (HF `model.unk_token`) that stands in for bytes without
    /// a token; nil when such bytes are dropped.
    public var modelUnknownTokenID: Int? { bpeUnknownTokenID.map(Int.init) }

    // MARK: - Encoding

    /// Encodes text to token ids. Never adds bos/eos (HF `add_special_tokens=False`).
    ///
    /// - Parameters:
    ///   - text: The text to encode.
    ///   - parseSpecialTokens: When true, special tokens written in the text (e.g. `<|im_start|>`)
    ///     become their single ids, longest match first (HF's default). When false they are
    ///     encoded as plain text. **Use false for anything a user wrote**; see the type's
    ///     security note.
    /// - Returns: Token ids. O(n) in the text length for cached words; merging a new word of
    ///   m bytes costs O(m log m).
    public func encode(_ text: String, parseSpecialTokens: Bool) -> [Int] {
        var text = text
        return text.withUTF8 { utf8 in
            var ids: [Int] = []
            ids.reserveCapacity(utf8.count / 3 + 1)
            var state = EncodingState()
            for segment in addedTokens.segments(of: utf8, parseSpecialTokens: parseSpecialTokens) {
                switch segment {
                case .token(let id):
                    ids.append(id)
                case .text(let range):
                    encodeText(utf8, range, state: &state, into: &ids)
                }
            }
            return ids
        }
    }

    private struct EncodingState {
        var scalars = ScalarBuffer()
        var words: [Range<Int>] = []
    }

    private func encodeText(
        _ utf8: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, state: inout EncodingState,
        into ids: inout [Int]
    ) {
        state.words.removeAll(keepingCapacity: true)
        wordSplitter.split(utf8, range, buffer: &state.scalars, into: &state.words)
        for word in state.words {
            if word.count == 1 {
                appendSymbol(of: utf8[word.lowerBound], to: &ids)
                continue
            }
            let bytes = Array(UnsafeBufferPointer(rebasing: utf8[word]))
            let isCacheable = bytes.count <= Self.maximumCachedWordLength
            if isCacheable, let cached = cache.withLock({ $0.ids(for: bytes) }) {
                for id in cached { ids.append(Int(id)) }
                continue
            }
            let merged = mergeWord(bytes)
            if isCacheable { cache.withLock { $0.insert(merged, for: bytes) } }
            for id in merged { ids.append(Int(id)) }
        }
    }

    @inline(__always)
    private func appendSymbol(of byte: UInt8, to ids: inout [Int]) {
        let id = byteTokenIDs[Int(byte)]
        if id >= 0 {
            ids.append(Int(id))
        } else if let bpeUnknownTokenID {
            ids.append(Int(bpeUnknownTokenID))
        }
    }

    /// BPE over one word's bytes. A byte without a token becomes the BPE model's unk token, or is
    /// dropped when there is none (as HF's BPE and llama.cpp do).
    func mergeWord(_ bytes: [UInt8]) -> [Int32] {
        if ignoresMerges, let id = wholeWordIDs[bytes] { return [id] }
        var symbols: [Int32] = []
        symbols.reserveCapacity(bytes.count)
        for byte in bytes {
            let id = byteTokenIDs[Int(byte)]
            if id >= 0 {
                symbols.append(id)
            } else if let bpeUnknownTokenID {
                symbols.append(bpeUnknownTokenID)
            }
        }
        merges.apply(to: &symbols)
        return symbols
    }

    // MARK: - Decoding

    /// Decodes ids to text. Byte sequences that are not valid UTF-8 become U+FFFD. Ids outside the
    /// vocabulary are skipped.
    ///
    /// - Parameters:
    ///   - ids: Token ids.
    ///   - skipSpecialTokens: Drop ids for which `isSpecial` is true.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids { appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the UTF-8 bytes a token stands for.
    func appendBytes(of id: Int, skipSpecialTokens: Bool, to bytes: inout [UInt8]) {
        guard tokens.indices.contains(id), !(skipSpecialTokens && specialFlags[id]) else { return }
        bytes.append(contentsOf: tokenBytes[tokenByteOffsets[id]..<tokenByteOffsets[id + 1]])
    }
}

// Incremental detokenization for generation: one id in, the newly completed text out. Byte-level
// tokens can end inside a UTF-8 sequence (an emoji is often 2-4 byte tokens), so bytes of an
// incomplete trailing sequence are held back until a later token completes it. Concatenating every
// piece plus `finish()` equals `Tokenizer.decode` of all ids (the role of HF `DecodeStream` and of
// llama.cpp's `token_to_piece` callers that buffer partial UTF-8).

/// Decodes a token stream piece by piece without ever splitting a UTF-8 sequence.
///
/// ```swift
/// var stream = StreamingDecoder(tokenizer: tokenizer)
/// for id in generatedIDs { print(stream.decode(id), terminator: "") }
/// print(stream.finish())
/// ```
public struct StreamingDecoder: Sendable {
    public let tokenizer: Tokenizer
    /// Whether special tokens (`Tokenizer.isSpecial`) produce no text.
    public let skipsSpecialTokens: Bool
    /// Bytes of a UTF-8 sequence whose end has not arrived yet (at most 3).
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipsSpecialTokens = skipSpecialTokens
    }

    /// Whether bytes of an unfinished UTF-8 sequence are being held back.
    public var hasPendingBytes: Bool { !pending.isEmpty }

    /// Adds one token and returns the text it completes; "" while a sequence is still open.
    public mutating func decode(_ id: Int) -> String {
        tokenizer.appendBytes(of: id, skipSpecialTokens: skipsSpecialTokens, to: &pending)
        let complete = Self.completePrefixLength(pending)
        guard complete > 0 else { return "" }
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Returns what is still held back (an unfinished sequence decodes to U+FFFD) and resets.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix that does not end inside a sequence that could still become
    /// valid: the trailing lead byte and its continuation bytes are held only if, so far, they are
    /// a valid prefix of a well-formed sequence (Unicode Table 3-7).
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let count = bytes.count
        var start = count
        // Find the last byte that is not a continuation byte, looking back at most 3 bytes.
        while start > 0 && count - start < 4 {
            start -= 1
            if bytes[start] & 0xC0 != 0x80 { break }
        }
        guard start < count else { return count }
        let lead = bytes[start]
        let needed: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0:
            needed = 3
            secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: needed = 3
        case 0xED:
            needed = 3
            secondRange = 0x80...0x9F
        case 0xF0:
            needed = 4
            secondRange = 0x90...0xBF
        case 0xF1...0xF3: needed = 4
        case 0xF4:
            needed = 4
            secondRange = 0x80...0x8F
        default: return count  // ASCII, stray continuation or invalid lead: nothing to wait for
        }
        let have = count - start
        guard have < needed else { return count }
        if have >= 2 && !secondRange.contains(bytes[start + 1]) { return count }
        if have >= 3 && bytes[start + 2] & 0xC0 != 0x80 { return count }
        return start
    }
}

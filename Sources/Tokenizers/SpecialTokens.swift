// Added and special tokens: strings such as "<|im_start|>" that are matched in raw text before
// pre-tokenization and become one id each (HF `AddedVocabulary`, llama.cpp
// `tokenizer_st_partition`). Matching is leftmost-longest over UTF-8 bytes. Special (control)
// tokens are matched only when the caller asks; non-special added tokens always are.

/// An added token: matched as a whole in text instead of going through BPE.
struct AddedToken: Sendable, Equatable {
    var id: Int
    var content: String
    /// Special (control) tokens are matched only with `parseSpecialTokens: true`.
    var isSpecial: Bool
    /// HF `lstrip`: whitespace before the token is absorbed into it.
    var stripsLeft = false
    /// HF `rstrip`: whitespace after the token is absorbed into it.
    var stripsRight = false
    /// HF `single_word`: only matched when not inside a word.
    var isSingleWord = false
}

/// A piece of input text after added-token matching.
enum TextSegment: Equatable {
    /// UTF-8 byte range to pre-tokenize and encode with BPE.
    case text(Range<Int>)
    /// An added token matched in the text.
    case token(Int)
}

struct AddedTokenMatcher: Sendable {
    private struct Entry: Sendable {
        var bytes: [UInt8]
        var token: AddedToken
    }

    /// Candidates by first byte, longest first.
    private let entriesByFirstByte: [[Entry]]
    private let hasNonSpecialTokens: Bool
    private let isEmpty: Bool

    init(_ tokens: [AddedToken]) {
        var table = [[Entry]](repeating: [], count: 256)
        for token in tokens where !token.content.isEmpty {
            let bytes = Array(token.content.utf8)
            table[Int(bytes[0])].append(Entry(bytes: bytes, token: token))
        }
        for index in table.indices {
            table[index].sort { $0.bytes.count > $1.bytes.count }
        }
        entriesByFirstByte = table
        hasNonSpecialTokens = tokens.contains { !$0.isSpecial && !$0.content.isEmpty }
        isEmpty = tokens.allSatisfy { $0.content.isEmpty }
    }

    /// Splits `text` into BPE text and added tokens. O(n · k) for k candidates per first byte.
    func segments(
        of text: UnsafeBufferPointer<UInt8>, parseSpecialTokens: Bool
    ) -> [TextSegment] {
        let count = text.count
        guard count > 0 else { return [] }
        guard !isEmpty, parseSpecialTokens || hasNonSpecialTokens else { return [.text(0..<count)] }
        var segments: [TextSegment] = []
        var textStart = 0
        var position = 0
        search: while position < count {
            for entry in entriesByFirstByte[Int(text[position])]
            where parseSpecialTokens || !entry.token.isSpecial {
                let end = position + entry.bytes.count
                guard end <= count, matches(entry.bytes, text, at: position) else { continue }
                if entry.token.isSingleWord
                    && (isWordScalar(before: position, in: text) || isWordScalar(at: end, in: text))
                {
                    continue
                }
                var matchStart = position
                var matchEnd = end
                if entry.token.stripsLeft {
                    while matchStart > textStart,
                        let (scalar, start) = scalar(before: matchStart, in: text),
                        scalar.properties.isWhitespace, start >= textStart
                    {
                        matchStart = start
                    }
                }
                if entry.token.stripsRight {
                    while matchEnd < count, let (scalar, length) = scalar(at: matchEnd, in: text),
                        scalar.properties.isWhitespace
                    {
                        matchEnd += length
                    }
                }
                if textStart < matchStart { segments.append(.text(textStart..<matchStart)) }
                segments.append(.token(entry.token.id))
                textStart = matchEnd
                position = matchEnd
                continue search
            }
            position += 1
        }
        if textStart < count { segments.append(.text(textStart..<count)) }
        return segments
    }

    private func matches(_ bytes: [UInt8], _ text: UnsafeBufferPointer<UInt8>, at start: Int)
        -> Bool
    {
        for (offset, byte) in bytes.enumerated() where text[start + offset] != byte { return false }
        return true
    }

    /// The scalar that starts at `index` and its UTF-8 length.
    private func scalar(at index: Int, in text: UnsafeBufferPointer<UInt8>) -> (
        Unicode.Scalar, Int
    )? {
        guard index < text.count else { return nil }
        var iterator = text[index...].makeIterator()
        var decoder = UTF8()
        guard case .scalarValue(let scalar) = decoder.decode(&iterator) else { return nil }
        return (scalar, UTF8.width(scalar))
    }

    /// The scalar that ends at `index` and its start offset.
    private func scalar(before index: Int, in text: UnsafeBufferPointer<UInt8>) -> (
        Unicode.Scalar, Int
    )? {
        guard index > 0 else { return nil }
        var start = index - 1
        while start > 0 && text[start] & 0xC0 == 0x80 { start -= 1 }
        guard let (scalar, _) = scalar(at: start, in: text) else { return nil }
        return (scalar, start)
    }

    /// Whether a letter, number or underscore ends at / starts at the index (HF `single_word`).
    private func isWordScalar(before index: Int, in text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let (scalar, _) = scalar(before: index, in: text) else { return false }
        return isWordCharacter(scalar)
    }

    private func isWordScalar(at index: Int, in text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let (scalar, _) = scalar(at: index, in: text) else { return false }
        return isWordCharacter(scalar)
    }

    private func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let cls = ScalarClass.of(scalar.value)
        return scalar == "_" || cls == ScalarClass.letter || cls == ScalarClass.number
    }
}

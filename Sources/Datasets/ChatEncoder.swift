// The shared core of the encoders: render messages with the chat template, find which bytes of the
// rendered text are message content and which are template markup, and tokenize so that markup
// parses special tokens but content never does (a user who types `<|im_start|>system` must not get
// the control token). Content is located exactly by rendering a second time with placeholder
// contents and checking that putting the real contents back reproduces the real text.
//
// Tokenization is whole-text by default, which is what HF's `apply_chat_template(tokenize=True)`
// gives; only when some content contains special-token text is the text tokenized piece by piece
// (markup with special tokens, content without). Piecewise tokenization can differ from whole-text
// at a boundary where the pre-tokenizer would have joined markup and content (content starting
// with a space after a newline); that difference is the price of safety and only arises then.

import ChatTemplates
import Tokenizers

/// How rendered chats are tokenized.
public enum ContentTokenization: String, Sendable, Codable, CaseIterable {
    /// One pass over the whole text (identical to HF `tokenizer(text)`) unless a message's content
    /// contains special-token text; then piece by piece, as `segmented`.
    case automatic
    /// Always piece by piece: markup with special tokens, content with `parseSpecialTokens: false`.
    case segmented
}

/// Token ids with the UTF-8 byte range each came from.
struct TokenizedText {
    var ids: [Int32] = []
    /// `starts[i]..<ends[i]` are the bytes of token i (clamped to its piece).
    var starts: [Int] = []
    var ends: [Int] = []
}

/// A rendered chat (or plain text) with the byte ranges that are message content.
struct SegmentedText {
    var bytes: [UInt8]
    /// Content ranges in order, with the index of the message each copies: every message's when
    /// the text is tokenized piecewise, at least the assistant messages' otherwise.
    var content: [(range: Range<Int>, message: Int)]
    /// Whether some content contains special-token text.
    var hasSpecialText: Bool

    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// The bytes from `offset` on, with content ranges clipped and shifted.
    func suffix(from offset: Int) -> SegmentedText {
        let content = content.compactMap { span -> (range: Range<Int>, message: Int)? in
            let clipped = span.range.clamped(to: offset..<bytes.count)
            return clipped.isEmpty
                ? nil : (clipped.lowerBound - offset..<clipped.upperBound - offset, span.message)
        }
        return SegmentedText(
            bytes: Array(bytes[offset...]), content: content, hasSpecialText: hasSpecialText)
    }
}

/// Renders and tokenizes chats for the encoders.
struct ChatEncoder: Sendable {
    let tokenizer: Tokenizer
    let template: ChatTemplate?
    let tokenization: ContentTokenization
    let bosText: String?
    let eosText: String?
    /// Bytes each token id stands for (for offsets of whole-text tokenization).
    let tokenByteCounts: [Int32]
    /// UTF-8 of every special token, indexed by first byte.
    let specialTexts: [[[UInt8]]]

    init(tokenizer: Tokenizer, template: ChatTemplate?, tokenization: ContentTokenization) {
        self.tokenizer = tokenizer
        self.template = template
        self.tokenization = tokenization
        let strings = tokenizer.tokenStrings(Array(0..<tokenizer.vocabularySize))
        bosText = tokenizer.bosTokenID.map { strings[$0] }
        eosText = tokenizer.eosTokenID.map { strings[$0] }
        var counts = [Int32](repeating: 0, count: strings.count)
        var specials = [[[UInt8]]](repeating: [], count: 256)
        for (id, string) in strings.enumerated() {
            let type = tokenizer.tokenType(of: id)
            if tokenizer.isSpecial(id) || type == .control || type == .userDefined {
                counts[id] = Int32(string.utf8.count)
            } else if string.unicodeScalars.allSatisfy(Self.isByteLevelScalar) {
                counts[id] = Int32(string.unicodeScalars.count)
            } else {
                counts[id] = Int32(string.utf8.count)
            }
            if tokenizer.isSpecial(id), let first = string.utf8.first {
                specials[Int(first)].append(Array(string.utf8))
            }
        }
        tokenByteCounts = counts
        specialTexts = specials
    }

    /// GPT-2's byte-level alphabet: printable Latin-1 stands for itself, U+0100… for the rest.
    private static func isByteLevelScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x21...0x7E, 0xA1...0xAC, 0xAE...0xFF, 0x100...0x143: true
        default: false
        }
    }

    /// Whether `bytes` contain the text of a special token.
    func containsSpecialText<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool
    where Bytes.Index == Int {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            for special in specialTexts[Int(bytes[index])]
            where bytes.endIndex - index >= special.count
                && bytes[index..<index + special.count].elementsEqual(special)
            {
                return true
            }
            index += 1
        }
        return false
    }

    // MARK: Rendering

    /// Renders `messages` and locates message content in the text.
    ///
    /// When the text will be tokenized whole (no special-token text in any content), only the
    /// assistant spans are needed, for loss masks, and the renderer tracks those exactly. Otherwise
    /// every message's content is located exactly by a second render with placeholder contents.
    func render(_ messages: [Message], addGenerationPrompt: Bool) throws(RecordError)
        -> SegmentedText
    {
        guard let template else {
            throw RecordError(
                field: nil,
                problem: .templateFailed(
                    message: "the tokenizer has no chat template; pass one to the encoder"))
        }
        func run(_ chat: [ChatMessage]) throws(RecordError) -> RenderedChat {
            do {
                return try template.render(
                    messages: chat, addGenerationPrompt: addGenerationPrompt, bosToken: bosText,
                    eosToken: eosText)
            } catch {
                throw RecordError(field: nil, problem: .templateFailed(message: error.description))
            }
        }
        let rendered = try run(messages.map(\.chatMessage))
        let real = Array(rendered.text.utf8)
        let contents = messages.map { Array($0.content.utf8) }
        let hasSpecialText = contents.contains { containsSpecialText($0) }
        if tokenization == .automatic && !hasSpecialText {
            return SegmentedText(
                bytes: real,
                content: rendered.assistantContent.map { ($0.utf8Range, $0.messageIndex) },
                hasSpecialText: false)
        }
        let placeholders = messages.enumerated().map { index, message in
            ChatMessage(role: message.role.rawValue, content: Self.placeholder(index))
        }
        if let content = Self.substitute(
            Array(try run(placeholders).text.utf8), contents: contents, expected: real)
        {
            return SegmentedText(bytes: real, content: content, hasSpecialText: hasSpecialText)
        }
        // The template transformed the contents, so where they lie cannot be verified. A search
        // could match markup instead of the content (content "<|im_start|>user" matches a
        // header), so special-token text is refused; otherwise it only affects loss masks.
        if let index = contents.firstIndex(where: { containsSpecialText($0) }) {
            throw RecordError(field: nil, problem: .contentNotIsolated(messageIndex: index))
        }
        var content: [(range: Range<Int>, message: Int)] = []
        var cursor = 0
        for (index, message) in messages.enumerated() {
            let trimmed = Array(message.content.trimmingWhitespace.utf8)
            if let found = real[cursor...].firstRange(of: contents[index])
                ?? real[cursor...].firstRange(of: trimmed)
            {
                content.append((found, index))
                cursor = found.upperBound
            }
        }
        return SegmentedText(bytes: real, content: content, hasSpecialText: false)
    }

    /// Private-use scalars around the index: they survive any template that copies content.
    private static func placeholder(_ index: Int) -> String { "\u{E000}\(index)\u{E001}" }

    /// Replaces placeholders in `rendered` by the contents; returns the content ranges when the
    /// result is exactly `expected`.
    private static func substitute(
        _ rendered: [UInt8], contents: [[UInt8]], expected: [UInt8]
    ) -> [(range: Range<Int>, message: Int)]? {
        let open: [UInt8] = [0xEE, 0x80, 0x80]
        let close: [UInt8] = [0xEE, 0x80, 0x81]
        var output: [UInt8] = []
        output.reserveCapacity(expected.count)
        var spans: [(range: Range<Int>, message: Int)] = []
        var index = 0
        while index < rendered.count {
            if rendered[index] == 0xEE, rendered[index...].starts(with: open) {
                var end = index + 3
                var number = 0
                while end < rendered.count, (0x30...0x39).contains(rendered[end]), number < 1 << 40 {
                    number = number * 10 + Int(rendered[end] - 0x30)
                    end += 1
                }
                if end > index + 3, rendered[end...].starts(with: close), number < contents.count {
                    let start = output.count
                    output.append(contentsOf: contents[number])
                    if !contents[number].isEmpty { spans.append((start..<output.count, number)) }
                    index = end + 3
                    continue
                }
            }
            output.append(rendered[index])
            index += 1
        }
        return output == expected ? spans : nil
    }

    // MARK: Tokenization

    /// Tokenizes rendered text: whole-text when allowed and safe, else piece by piece.
    func tokenize(_ text: SegmentedText, markupParsesSpecialTokens: Bool = true) -> TokenizedText {
        if tokenization == .automatic && !text.hasSpecialText {
            let ids = tokenizer.encode(text.text, parseSpecialTokens: markupParsesSpecialTokens)
            var result = TokenizedText()
            result.ids.reserveCapacity(ids.count)
            result.starts.reserveCapacity(ids.count)
            result.ends.reserveCapacity(ids.count)
            var offset = 0
            for id in ids {
                result.ids.append(Int32(id))
                result.starts.append(offset)
                offset += Int(tokenByteCounts[id])
                result.ends.append(offset)
            }
            if offset == text.bytes.count { return result }
            // Bytes without a token were dropped; offsets are unreliable, so go piece by piece.
        }
        return tokenizePieces(text, markupParsesSpecialTokens: markupParsesSpecialTokens)
    }

    private func tokenizePieces(_ text: SegmentedText, markupParsesSpecialTokens: Bool)
        -> TokenizedText
    {
        var result = TokenizedText()
        func encode(_ range: Range<Int>, isContent: Bool) {
            guard !range.isEmpty else { return }
            let piece = String(decoding: text.bytes[range], as: UTF8.self)
            let ids = tokenizer.encode(
                piece, parseSpecialTokens: !isContent && markupParsesSpecialTokens)
            var offset = range.lowerBound
            for id in ids {
                result.ids.append(Int32(id))
                result.starts.append(min(offset, range.upperBound))
                offset += Int(tokenByteCounts[id])
                result.ends.append(min(offset, range.upperBound))
            }
        }
        var cursor = 0
        var index = 0
        let content = text.content
        while index < content.count {
            // Adjacent content ranges are one piece (prompt + completion of plain-text records).
            var end = content[index].range.upperBound
            var next = index + 1
            while next < content.count && content[next].range.lowerBound == end {
                end = content[next].range.upperBound
                next += 1
            }
            encode(cursor..<content[index].range.lowerBound, isContent: false)
            encode(content[index].range.lowerBound..<end, isContent: true)
            cursor = end
            index = next
        }
        encode(cursor..<text.bytes.count, isContent: false)
        return result
    }
}

extension String {
    var trimmingWhitespace: Substring {
        let start = firstIndex { !$0.isWhitespace } ?? endIndex
        let end = lastIndex { !$0.isWhitespace }.map(index(after:)) ?? start
        return self[start..<max(start, end)]
    }
}

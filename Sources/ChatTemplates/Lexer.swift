// Template lexer: splits template source into text and tag tokens the way jinja2's lexer does
// when configured like HF transformers' `apply_chat_template` (trim_blocks=True,
// lstrip_blocks=True, keep_trailing_newline=False). Follows jinja2/lexer.py: `-` and `+`
// whitespace control on every tag, lstrip only for `{%` and `{#` at line start, one newline
// eaten after `%}` and `#}`, closing delimiters ignored inside brackets, `{% raw %}` blocks.

enum TokenKind: Equatable {
    case text(String)
    case variableBegin, variableEnd, blockBegin, blockEnd
    case name(String)
    case string(String)
    case integer(Int)
    case float(Double)
    case op(String)
    case eof
}

struct Token {
    var kind: TokenKind
    var location: TemplateLocation
}

struct Lexer {
    let bytes: [UInt8]
    /// Line and column of every byte offset (and of the end), so token locations are O(1).
    private var lines: [Int32] = []
    private var columns: [Int32] = []
    private var pos = 0
    var tokens: [Token] = []
    /// jinja2's `line_starting`: the previous match ended with a newline (or nothing came yet).
    private var lineStarting = true

    init(source: String) {
        // jinja2 normalises newlines in the source and drops one trailing newline.
        var text = source.replacingCRLF()
        if text.hasSuffix("\n") { text.removeLast() }
        bytes = Array(text.utf8)
        lines.reserveCapacity(bytes.count + 1)
        columns.reserveCapacity(bytes.count + 1)
        var line: Int32 = 1
        var column: Int32 = 0
        for byte in bytes {
            if byte & 0xC0 != 0x80 { column += 1 }
            lines.append(line)
            columns.append(column)
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 0
            }
        }
        lines.append(line)
        columns.append(column + 1)
    }

    static func tokenize(_ source: String) throws(TemplateError) -> [Token] {
        var lexer = Lexer(source: source)
        try lexer.run()
        return lexer.tokens
    }

    func location(at offset: Int) -> TemplateLocation {
        let index = min(offset, bytes.count)
        return TemplateLocation(line: Int(lines[index]), column: Int(columns[index]))
    }

    private mutating func run() throws(TemplateError) {
        while pos < bytes.count {
            guard let (tagStart, opener) = nextTagStart(from: pos) else {
                emitText(bytes[pos...], at: pos)
                pos = bytes.count
                break
            }
            var text = bytes[pos..<tagStart]
            var cursor = tagStart + 2
            let sign = cursor < bytes.count ? bytes[cursor] : 0
            let hasSign = sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+")
            if hasSign { cursor += 1 }
            if sign == UInt8(ascii: "-") {
                text = text.droppingTrailingWhitespace()
            } else if sign != UInt8(ascii: "+") && opener != UInt8(ascii: "{") {
                text = lstripBlock(text)
            }
            emitText(text, at: pos)
            switch opener {
            case UInt8(ascii: "#"):
                pos = try skipComment(from: cursor, openedAt: tagStart)
            case UInt8(ascii: "%"):
                if let end = try rawBlock(from: cursor, openedAt: tagStart) {
                    pos = end
                } else {
                    tokens.append(Token(kind: .blockBegin, location: location(at: tagStart)))
                    pos = try lexTag(from: cursor, isBlock: true, openedAt: tagStart)
                }
            default:
                tokens.append(Token(kind: .variableBegin, location: location(at: tagStart)))
                pos = try lexTag(from: cursor, isBlock: false, openedAt: tagStart)
            }
        }
        tokens.append(Token(kind: .eof, location: location(at: bytes.count)))
    }

    /// The earliest `{{`, `{%` or `{#` at or after `offset`, with its second byte.
    private func nextTagStart(from offset: Int) -> (Int, UInt8)? {
        var index = offset
        while index + 1 < bytes.count {
            if bytes[index] == UInt8(ascii: "{") {
                let next = bytes[index + 1]
                if next == UInt8(ascii: "{") || next == UInt8(ascii: "%")
                    || next == UInt8(ascii: "#")
                {
                    return (index, next)
                }
            }
            index += 1
        }
        return nil
    }

    /// lstrip_blocks: drop spaces and tabs between the line start and a block or comment tag.
    private func lstripBlock(_ text: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let lineStart = (text.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? text.startIndex
        guard lineStart > text.startIndex || lineStarting else { return text }
        let tail = text[lineStart...]
        guard !tail.isEmpty,
            String(decoding: tail, as: UTF8.self).unicodeScalars.allSatisfy(\.isPythonWhitespace)
        else { return text }
        return text[..<lineStart]
    }

    private mutating func emitText(_ text: ArraySlice<UInt8>, at offset: Int) {
        guard !text.isEmpty else { return }
        tokens.append(
            Token(
                kind: .text(String(decoding: text, as: UTF8.self)), location: location(at: offset)))
    }

    /// Skips `{# … #}`; returns the offset after the closing delimiter and its trimming.
    private mutating func skipComment(from start: Int, openedAt open: Int) throws(TemplateError)
        -> Int
    {
        var index = start
        while index + 1 < bytes.count {
            if bytes[index] == UInt8(ascii: "#") && bytes[index + 1] == UInt8(ascii: "}") {
                let before = index > start ? bytes[index - 1] : 0
                return finishTag(closeEnd: index + 2, sign: before, trimsNewline: true)
            }
            index += 1
        }
        throw .syntax(message: "missing end of comment tag '#}'", location: location(at: open))
    }

    /// Applies the closing delimiter's whitespace control and records `line_starting`.
    mutating func finishTag(closeEnd: Int, sign: UInt8, trimsNewline: Bool) -> Int {
        var end = closeEnd
        if sign == UInt8(ascii: "-") {
            end = skipWhitespace(from: end)
        } else if sign != UInt8(ascii: "+") && trimsNewline && end < bytes.count
            && bytes[end] == UInt8(ascii: "\n")
        {
            end += 1
        }
        lineStarting = end > 0 && bytes[end - 1] == UInt8(ascii: "\n")
        return end
    }

    func skipWhitespace(from offset: Int) -> Int {
        var end = offset
        while end < bytes.count, let (scalar, length) = decodeScalar(at: end),
            scalar.isPythonWhitespace
        {
            end += length
        }
        return end
    }

    func decodeScalar(at offset: Int) -> (Unicode.Scalar, Int)? {
        if bytes[offset] < 0x80 { return (Unicode.Scalar(bytes[offset]), 1) }
        var iterator = bytes[offset...].makeIterator()
        var decoder = UTF8()
        guard case .scalarValue(let scalar) = decoder.decode(&iterator) else { return nil }
        return (scalar, UTF8.width(scalar))
    }

    /// `{% raw %}…{% endraw %}`: emits the body as text. Returns nil when the tag is not `raw`.
    private mutating func rawBlock(from start: Int, openedAt open: Int) throws(TemplateError)
        -> Int?
    {
        guard let bodyStart = matchKeywordTag("raw", at: start) else { return nil }
        var bodyOffset = bodyStart.end
        if bodyStart.sign == UInt8(ascii: "-") { bodyOffset = skipWhitespace(from: bodyOffset) }
        var index = bodyOffset
        while let (tagStart, opener) = nextTagStart(from: index) {
            if opener == UInt8(ascii: "%") {
                var cursor = tagStart + 2
                let sign = cursor < bytes.count ? bytes[cursor] : 0
                if sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") { cursor += 1 }
                if let close = matchKeywordTag("endraw", at: cursor) {
                    var body = bytes[bodyOffset..<tagStart]
                    if sign == UInt8(ascii: "-") { body = body.droppingTrailingWhitespace() }
                    emitText(body, at: bodyOffset)
                    return finishTag(closeEnd: close.end, sign: close.sign, trimsNewline: true)
                }
            }
            index = tagStart + 2
        }
        throw .syntax(
            message: "missing '{% endraw %}' for this raw block", location: location(at: open))
    }

    /// Matches `\s*keyword\s*[-+]?%}` at `offset`; returns the end offset and closing sign.
    private func matchKeywordTag(_ keyword: String, at offset: Int) -> (end: Int, sign: UInt8)? {
        var index = skipWhitespace(from: offset)
        for byte in keyword.utf8 {
            guard index < bytes.count, bytes[index] == byte else { return nil }
            index += 1
        }
        index = skipWhitespace(from: index)
        var sign: UInt8 = 0
        if index < bytes.count,
            bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+")
        {
            sign = bytes[index]
            index += 1
        }
        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "%"),
            bytes[index + 1] == UInt8(ascii: "}")
        else { return nil }
        return (index + 2, sign)
    }
}

extension ArraySlice where Element == UInt8 {
    /// Python `str.rstrip()` on UTF-8 bytes.
    func droppingTrailingWhitespace() -> ArraySlice<UInt8> {
        let text = String(decoding: self, as: UTF8.self)
        var scalars = Substring(text).unicodeScalars
        while let last = scalars.last, last.isPythonWhitespace { scalars.removeLast() }
        let kept = String(scalars).utf8.count
        return self[startIndex..<startIndex + kept]
    }
}

extension String {
    /// jinja2 normalises `\r\n` and `\r` in template source to `\n`.
    func replacingCRLF() -> String {
        guard utf8.contains(UInt8(ascii: "\r")) else { return self }
        var result = ""
        var previousWasCR = false
        for scalar in unicodeScalars {
            if scalar == "\r" {
                result.unicodeScalars.append("\n")
                previousWasCR = true
                continue
            }
            if scalar == "\n" && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = false
            result.unicodeScalars.append(scalar)
        }
        return result
    }
}

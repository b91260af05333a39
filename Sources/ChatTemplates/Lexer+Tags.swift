// Tokens inside `{{ … }}` and `{% … %}`: names, numbers, string literals (Python escape
// rules, as jinja2 decodes them with `unicode-escape`) and operators. As in jinja2, a closing
// delimiter only ends the tag when every bracket opened inside it is closed, so
// `{{ {'a': {'b': 1}} }}` lexes.

extension Lexer {
    private static let operators = [
        "//", "**", "==", "!=", ">=", "<=",
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|",
        ",", ";",
    ]

    mutating func lexTag(from start: Int, isBlock: Bool, openedAt open: Int) throws(TemplateError)
        -> Int
    {
        var index = start
        var brackets: [(closer: UInt8, offset: Int)] = []
        while true {
            guard index < bytes.count else {
                if let open = brackets.last {
                    throw .syntax(
                        message:
                            "unclosed '\(Character(Unicode.Scalar(bracketOpener(open.closer))))'",
                        location: location(at: open.offset))
                }
                let closer = isBlock ? "%}" : "}}"
                throw .syntax(
                    message: "missing '\(closer)' to close this tag", location: location(at: open))
            }
            if brackets.isEmpty, let (closeEnd, sign) = matchClose(at: index, isBlock: isBlock) {
                tokens.append(
                    Token(kind: isBlock ? .blockEnd : .variableEnd, location: location(at: index)))
                return finishTag(closeEnd: closeEnd, sign: sign, trimsNewline: isBlock)
            }
            guard let (scalar, width) = decodeScalar(at: index) else {
                throw .syntax(message: "invalid UTF-8 in tag", location: location(at: index))
            }
            if scalar.isPythonWhitespace {
                index += width
                continue
            }
            let here = location(at: index)
            let byte = bytes[index]
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                let (kind, end) = try lexNumber(at: index)
                tokens.append(Token(kind: kind, location: here))
                index = end
            } else if scalar == "_" || scalar.properties.isXIDStart {
                var end = index + width
                while end < bytes.count, let (next, nextWidth) = decodeScalar(at: end),
                    next == "_" || next.properties.isXIDContinue
                {
                    end += nextWidth
                }
                tokens.append(
                    Token(
                        kind: .name(String(decoding: bytes[index..<end], as: UTF8.self)),
                        location: here))
                index = end
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                let end = try stringEnd(from: index)
                let body = String(decoding: bytes[index + 1..<end - 1], as: UTF8.self)
                tokens.append(Token(kind: .string(decodePythonEscapes(body)), location: here))
                index = end
            } else if let op = Self.operators.first(where: { matches($0, at: index) }) {
                try trackBrackets(op, at: index, in: &brackets)
                tokens.append(Token(kind: .op(op), location: here))
                index += op.utf8.count
            } else {
                throw .syntax(message: "unexpected character '\(scalar)'", location: here)
            }
        }
    }

    private func bracketOpener(_ closer: UInt8) -> UInt8 {
        switch closer {
        case UInt8(ascii: ")"): UInt8(ascii: "(")
        case UInt8(ascii: "]"): UInt8(ascii: "[")
        default: UInt8(ascii: "{")
        }
    }

    private func trackBrackets(
        _ op: String, at index: Int, in brackets: inout [(closer: UInt8, offset: Int)]
    ) throws(TemplateError) {
        switch op {
        case "(": brackets.append((UInt8(ascii: ")"), index))
        case "[": brackets.append((UInt8(ascii: "]"), index))
        case "{": brackets.append((UInt8(ascii: "}"), index))
        case ")", "]", "}":
            guard let open = brackets.popLast() else {
                throw .syntax(message: "unexpected '\(op)'", location: location(at: index))
            }
            guard open.closer == op.utf8.first! else {
                throw .syntax(
                    message:
                        "unexpected '\(op)', expected '\(Character(Unicode.Scalar(open.closer)))'",
                    location: location(at: index))
            }
        default: break
        }
    }

    private func matches(_ text: String, at offset: Int) -> Bool {
        var index = offset
        for byte in text.utf8 {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
        }
        return true
    }

    /// `-%}`, `+%}`, `%}` (blocks) or `-}}`, `}}` (expressions): end offset and sign byte.
    private func matchClose(at index: Int, isBlock: Bool) -> (Int, UInt8)? {
        let closer = isBlock ? "%}" : "}}"
        if matches(closer, at: index) { return (index + 2, 0) }
        if matches("-" + closer, at: index) { return (index + 3, UInt8(ascii: "-")) }
        if isBlock && matches("+" + closer, at: index) { return (index + 3, UInt8(ascii: "+")) }
        return nil
    }

    private func stringEnd(from start: Int) throws(TemplateError) -> Int {
        let quote = bytes[start]
        var index = start + 1
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\\") {
                index += 2
                continue
            }
            if bytes[index] == quote { return index + 1 }
            index += 1
        }
        throw .syntax(message: "unterminated string literal", location: location(at: start))
    }

    /// Digits with optional single underscores between them (`1_000`).
    private func digitRun(from start: Int, isDigit: (UInt8) -> Bool) -> Int {
        var index = start
        while index < bytes.count {
            if isDigit(bytes[index]) {
                index += 1
            } else if bytes[index] == UInt8(ascii: "_"), index > start, index + 1 < bytes.count,
                isDigit(bytes[index + 1])
            {
                index += 1
            } else {
                break
            }
        }
        return index
    }

    private func lexNumber(at start: Int) throws(TemplateError) -> (TokenKind, Int) {
        let isDecimal: (UInt8) -> Bool = { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        if bytes[start] == UInt8(ascii: "0"), start + 1 < bytes.count {
            let prefix = bytes[start + 1] | 0x20
            let radix =
                prefix == UInt8(ascii: "x")
                ? 16 : prefix == UInt8(ascii: "o") ? 8 : prefix == UInt8(ascii: "b") ? 2 : 0
            if radix != 0 {
                let end = digitRun(from: start + 2) {
                    Int(String(UnicodeScalar($0)), radix: radix) != nil
                }
                let digits = String(decoding: bytes[start + 2..<end], as: UTF8.self).replacing(
                    "_", with: "")
                guard let value = Int(digits, radix: radix) else {
                    throw .syntax(message: "invalid integer literal", location: location(at: start))
                }
                return (.integer(value), end)
            }
        }
        var end = digitRun(from: start, isDigit: isDecimal)
        var isFloat = false
        let followsDot = start > 0 && bytes[start - 1] == UInt8(ascii: ".")
        if !followsDot, end + 1 < bytes.count, bytes[end] == UInt8(ascii: "."),
            isDecimal(bytes[end + 1])
        {
            end = digitRun(from: end + 1, isDigit: isDecimal)
            isFloat = true
        }
        if !followsDot, end < bytes.count, bytes[end] | 0x20 == UInt8(ascii: "e") {
            var exponent = end + 1
            if exponent < bytes.count,
                bytes[exponent] == UInt8(ascii: "+") || bytes[exponent] == UInt8(ascii: "-")
            {
                exponent += 1
            }
            if exponent < bytes.count, isDecimal(bytes[exponent]) {
                end = digitRun(from: exponent, isDigit: isDecimal)
                isFloat = true
            }
        }
        let text = String(decoding: bytes[start..<end], as: UTF8.self).replacing("_", with: "")
        if isFloat, let value = Double(text) { return (.float(value), end) }
        guard let value = Int(text) else {
            throw .syntax(
                message: "integer literal '\(text)' is out of range", location: location(at: start))
        }
        return (.integer(value), end)
    }
}

/// Decodes Python string-literal escapes (`\n`, `\t`, `\\`, `\'`, `\xhh`, `\uXXXX`, octal, …).
/// Unknown escapes keep their backslash, as Python's `unicode-escape` codec does.
func decodePythonEscapes(_ body: String) -> String {
    guard body.contains("\\") else { return body }
    var result = String.UnicodeScalarView()
    let scalars = Array(body.unicodeScalars)
    var index = 0
    func hexValue(_ count: Int) -> Unicode.Scalar? {
        guard index + count < scalars.count else { return nil }
        let digits = String(String.UnicodeScalarView(scalars[index + 1...index + count]))
        guard let value = UInt32(digits, radix: 16) else { return nil }
        return Unicode.Scalar(value)
    }
    while index < scalars.count {
        let scalar = scalars[index]
        guard scalar == "\\", index + 1 < scalars.count else {
            result.append(scalar)
            index += 1
            continue
        }
        index += 1
        let code = scalars[index]
        let simple: [Unicode.Scalar: Unicode.Scalar] = [
            "n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", "\"": "\"",
            "a": "\u{07}", "b": "\u{08}", "f": "\u{0C}", "v": "\u{0B}",
        ]
        if let mapped = simple[code] {
            result.append(mapped)
            index += 1
        } else if code == "\n" {
            index += 1
        } else if let width = ["x": 2, "u": 4, "U": 8][Character(code)],
            let decoded = hexValue(width)
        {
            result.append(decoded)
            index += width + 1
        } else if ("0"..."7").contains(code) {
            var value: UInt32 = 0
            var count = 0
            while count < 3, index < scalars.count, ("0"..."7").contains(scalars[index]) {
                value = value * 8 + (scalars[index].value - 48)
                index += 1
                count += 1
            }
            result.append(Unicode.Scalar(value)!)
        } else {
            result.append("\\")
        }
    }
    return String(result)
}

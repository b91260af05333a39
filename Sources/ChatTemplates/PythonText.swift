// Python `str` semantics the templates rely on: whitespace as `str.isspace()` defines it,
// `strip`/`split` on code points, `str.title()`, `repr()` of strings and floats. Templates are
// written against CPython, so exact rendering needs these rather than Swift's String rules
// (which work on grapheme clusters and treat "\r\n" as one character).

extension Unicode.Scalar {
    /// `str.isspace()`: the Unicode White_Space set plus the ASCII separators U+001C…U+001F.
    var isPythonWhitespace: Bool {
        if value < 0x80 {
            return value == 0x20 || (0x09...0x0D).contains(value) || (0x1C...0x1F).contains(value)
        }
        return properties.isWhitespace
    }
}

extension TaggedString {
    /// `str.strip(chars)`, `lstrip`, `rstrip`; `chars == nil` strips whitespace.
    func stripped(_ chars: String? = nil, leading: Bool = true, trailing: Bool = true)
        -> TaggedString
    {
        let scalars = Array(text.unicodeScalars)
        let set = chars.map { Set($0.unicodeScalars) }
        let strips: (Unicode.Scalar) -> Bool = { set?.contains($0) ?? $0.isPythonWhitespace }
        var start = 0
        var end = scalars.count
        if leading { while start < end, strips(scalars[start]) { start += 1 } }
        if trailing { while end > start, strips(scalars[end - 1]) { end -= 1 } }
        if start == 0 && end == scalars.count { return self }
        return slice(scalars: start..<end, offsets: scalarOffsets)
    }

    /// `str.split(sep, maxsplit)`; with `sep == nil`, splits on runs of whitespace.
    func split(separator: String?, maxSplits: Int = -1) -> [TaggedString] {
        let scalars = Array(text.unicodeScalars)
        let offsets = scalarOffsets
        var pieces: [Range<Int>] = []
        if let separator {
            let sep = Array(separator.unicodeScalars)
            var start = 0
            var index = 0
            while index + sep.count <= scalars.count, maxSplits < 0 || pieces.count < maxSplits {
                if Array(scalars[index..<index + sep.count]) == sep {
                    pieces.append(start..<index)
                    index += sep.count
                    start = index
                } else {
                    index += 1
                }
            }
            pieces.append(start..<scalars.count)
        } else {
            var index = 0
            while index < scalars.count {
                while index < scalars.count, scalars[index].isPythonWhitespace { index += 1 }
                guard index < scalars.count else { break }
                if maxSplits >= 0, pieces.count == maxSplits {
                    var end = scalars.count
                    while end > index, scalars[end - 1].isPythonWhitespace { end -= 1 }
                    pieces.append(index..<end)
                    break
                }
                let start = index
                while index < scalars.count, !scalars[index].isPythonWhitespace { index += 1 }
                pieces.append(start..<index)
            }
        }
        return pieces.map { slice(scalars: $0, offsets: offsets) }
    }
}

extension String {
    /// `str.title()`: upper-cases a cased letter after an uncased one, lower-cases the rest.
    var pythonTitle: String {
        var result = ""
        var previousCased = false
        for scalar in unicodeScalars {
            result +=
                previousCased
                ? scalar.properties.lowercaseMapping : scalar.properties.titlecaseMapping
            previousCased = scalar.properties.isCased
        }
        return result
    }

    /// `str.capitalize()`: first character upper case, the rest lower case.
    var pythonCapitalized: String {
        guard let first = unicodeScalars.first else { return self }
        return String(first).uppercased() + String(unicodeScalars.dropFirst()).lowercased()
    }

    /// `repr(str)`: single quotes unless the text has `'` and no `"`; escapes control characters.
    var pythonRepr: String {
        let quote: Unicode.Scalar =
            unicodeScalars.contains("'") && !unicodeScalars.contains("\"") ? "\"" : "'"
        var result = String(quote)
        for scalar in unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case quote: result += "\\" + String(quote)
            default:
                if scalar.value < 0x20 || (0x7F...0xA0).contains(scalar.value) {
                    result += "\\x" + String(scalar.value, radix: 16).leftPadded(to: 2)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        result.unicodeScalars.append(quote)
        return result
    }

    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

/// `repr(float)` / `str(float)`: shortest round-trip digits, scientific notation when the
/// decimal exponent is below -4 or at least 16, and a trailing `.0` on whole numbers.
func pythonFloatRepr(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
    // Swift's description also gives the shortest round-trip digits; only the layout differs.
    var text = Swift.abs(value).description
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponent = Int(text[text.index(after: e)...])!
        text = String(text[..<e])
    }
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    let integerPart = String(parts[0])
    let fractionPart = parts.count > 1 ? String(parts[1]) : ""
    var digits = integerPart + fractionPart
    var pointPosition = integerPart.count + exponent
    while digits.hasPrefix("0") && digits.count > 1 {
        digits.removeFirst()
        pointPosition -= 1
    }
    while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
    let sign = value < 0 ? "-" : ""
    let decimalExponent = pointPosition - 1
    if decimalExponent < -4 || decimalExponent >= 16 {
        let mantissa = digits.count > 1 ? "\(digits.first!).\(digits.dropFirst())" : digits
        let exponentText = String(Swift.abs(decimalExponent)).leftPadded(to: 2)
        return "\(sign)\(mantissa)e\(decimalExponent < 0 ? "-" : "+")\(exponentText)"
    }
    if pointPosition <= 0 {
        return sign + "0." + String(repeating: "0", count: -pointPosition) + digits
    }
    if pointPosition >= digits.count {
        return sign + digits + String(repeating: "0", count: pointPosition - digits.count) + ".0"
    }
    let split = digits.index(digits.startIndex, offsetBy: pointPosition)
    return sign + digits[..<split] + "." + digits[split...]
}

// The `tojson` filter as HF transformers overrides it: Python's
// `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`. Output
// matches CPython byte for byte: ", " and ": " separators (or "," with an indent), floats via
// repr, NaN/Infinity literals, and only `"`, `\` and control characters escaped.

struct JSONOptions {
    var ensureASCII = false
    /// nil: one line. Otherwise each nested level is indented by this string.
    var indent: String?
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false

    /// Reads the keyword arguments of `tojson(indent=…, separators=…, …)`.
    init(_ arguments: CallArguments) throws {
        let bound = try arguments.bind(
            "tojson", ["ensure_ascii", "indent", "separators", "sort_keys"])
        ensureASCII = bound[0]?.isTruthy ?? false
        sortKeys = bound[3]?.isTruthy ?? false
        switch bound[1] {
        case nil, .none?: indent = nil
        case .string(let text)?: indent = text.text
        case let value?:
            guard let width = value.integer else {
                throw EvalFailure("tojson indent must be an int or a string")
            }
            indent = String(repeating: " ", count: Swift.min(Swift.max(0, width), 1024))
        }
        if indent != nil { itemSeparator = "," }
        if let separators = bound[2], !separators.isNoneOrUndefined {
            let parts = try separators.iterated()
            guard parts.count == 2, case .string(let item) = parts[0],
                case .string(let key) = parts[1]
            else {
                throw EvalFailure("tojson separators must be a pair of strings")
            }
            itemSeparator = item.text
            keySeparator = key.text
        }
    }
}

extension Value {
    func json(_ options: JSONOptions, level: Int = 0) throws -> String {
        switch self {
        case .none: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .int(let number): return String(number)
        case .double(let number):
            if number.isNaN { return "NaN" }
            if number.isInfinite { return number < 0 ? "-Infinity" : "Infinity" }
            return pythonFloatRepr(number)
        case .string(let text): return jsonQuoted(text.text, ensureASCII: options.ensureASCII)
        case .array(let items):
            return try jsonContainer(
                "[", "]", items.map { try $0.json(options, level: level + 1) }, options, level)
        case .object(let object):
            let pairs =
                options.sortKeys
                ? object.pairs.sorted {
                    $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars)
                } : object.pairs
            let members = try pairs.map {
                jsonQuoted($0.key, ensureASCII: options.ensureASCII) + options.keySeparator
                    + (try $0.value.json(options, level: level + 1))
            }
            return jsonContainer("{", "}", members, options, level)
        default:
            throw EvalFailure("Object of type \(typeName) is not JSON serializable")
        }
    }

    private func jsonContainer(
        _ open: String, _ close: String, _ members: [String], _ options: JSONOptions, _ level: Int
    ) -> String {
        guard !members.isEmpty else { return open + close }
        guard let indent = options.indent else {
            return open + members.joined(separator: options.itemSeparator) + close
        }
        let inner = "\n" + String(repeating: indent, count: level + 1)
        let outer = "\n" + String(repeating: indent, count: level)
        return open + inner + members.joined(separator: options.itemSeparator + inner) + outer
            + close
    }
}

/// A JSON string literal as Python's encoder writes it.
func jsonQuoted(_ text: String, ensureASCII: Bool) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case "\u{08}": result += "\\b"
        case "\u{0C}": result += "\\f"
        default:
            if scalar.value < 0x20 || (ensureASCII && scalar.value > 0x7E) {
                if scalar.value > 0xFFFF {
                    let offset = scalar.value - 0x10000
                    result +=
                        unicodeEscape(0xD800 + (offset >> 10))
                        + unicodeEscape(0xDC00 + (offset & 0x3FF))
                } else {
                    result += unicodeEscape(scalar.value)
                }
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
    }
    return result + "\""
}

private func unicodeEscape(_ value: UInt32) -> String {
    "\\u" + String(value, radix: 16).leftPadded(to: 4)
}

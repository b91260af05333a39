// Jinja's built-in filters used by chat templates, following jinja2/filters.py (3.1), plus
// HF's `tojson`. Filter names are checked when the template is parsed, so an unsupported one
// fails at load time with its location. Strings keep assistant marks through `trim`, `join`,
// `string`, `default` and `first`/`last`.

import Foundation

enum Filters {
    static let names: Set<String> = [
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first",
        "format",
        "float", "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max",
        "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select",
        "selectattr",
        "sort", "string", "sum", "title", "tojson", "trim", "unique", "upper", "wordcount",
    ]

    static func apply(_ name: String, to value: Value, _ arguments: CallArguments) throws -> Value {
        switch name {
        case "default", "d":
            let bound = try arguments.bind(name, ["default_value", "boolean"])
            let useDefault = value.isUndefined || ((bound[1]?.isTruthy ?? false) && !value.isTruthy)
            return useDefault ? bound[0] ?? .string("") : value
        case "length", "count":
            return .int(try value.length())
        case "string":
            return .string(value.taggedString)
        case "safe":
            return value
        case "trim":
            let chars = try arguments.bind("trim", ["chars"])[0]
            let set = try chars.flatMap {
                $0.isNoneOrUndefined ? nil : try $0.requireString("chars").text
            }
            return .string(value.taggedString.stripped(set))
        case "upper": return .string(value.pythonString.uppercased())
        case "lower": return .string(value.pythonString.lowercased())
        case "capitalize": return .string(value.pythonString.pythonCapitalized)
        case "title": return .string(jinjaTitle(value.pythonString))
        case "replace":
            let bound = try arguments.bind("replace", ["old", "new", "count"], required: 2)
            return .string(
                value.pythonString.pythonReplacing(
                    bound[0]!.pythonString, with: bound[1]!.pythonString,
                    count: bound[2]?.integer ?? -1))
        case "indent":
            guard case .string(let text) = value else {
                throw EvalFailure("indent needs a string, not \(value.typeName)")
            }
            return .string(try indent(text.text, arguments))
        case "format":
            return .string(try printfFormat(value.pythonString, .array(arguments.positional)))
        case "escape", "e":
            return .string(htmlEscaped(value.pythonString))
        case "tojson":
            return .string(try value.json(JSONOptions(arguments)))
        case "wordcount":
            let words = value.pythonString.unicodeScalars.split {
                !($0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "_")
            }
            return .int(words.count)
        default:
            return try applySequenceFilter(name, to: value, arguments)
        }
    }

    private static func applySequenceFilter(
        _ name: String, to value: Value, _ arguments: CallArguments
    ) throws -> Value {
        switch name {
        case "first", "last":
            let items = try value.iterated()
            return (name == "first" ? items.first : items.last)
                ?? .undefined(hint: "No \(name) item, sequence was empty.")
        case "list":
            return .array(try value.iterated())
        case "items":
            if value.isUndefined { return .array([]) }
            guard case .object(let object) = value else {
                throw EvalFailure("Can only get item pairs from a mapping.")
            }
            return .array(object.pairs.map { .array([.string($0.key), $0.value]) })
        case "join":
            let bound = try arguments.bind("join", ["d", "attribute"])
            let separator = bound[0]?.taggedString ?? TaggedString()
            var items = try value.iterated()
            if let attribute = bound[1], !attribute.isNoneOrUndefined {
                items = try items.map { try $0.attributePath(attribute) }
            }
            var result = TaggedString()
            for (index, item) in items.enumerated() {
                if index > 0 { result.append(separator) }
                result.append(item.taggedString)
            }
            return .string(result)
        case "reverse":
            if case .string(let text) = value {
                return .string(String(text.text.unicodeScalars.reversed().map(Character.init)))
            }
            return .array(try value.iterated().reversed())
        case "map":
            return .array(try map(value, arguments))
        case "select", "reject", "selectattr", "rejectattr":
            return .array(try select(name, value, arguments))
        case "sort", "dictsort", "unique", "min", "max":
            return try orderingFilter(name, value, arguments)
        case "sum":
            let bound = try arguments.bind("sum", ["attribute", "start"])
            var total = bound[1] ?? .int(0)
            for item in try value.iterated() {
                let term =
                    try bound[0].map { $0.isNoneOrUndefined ? item : try item.attributePath($0) }
                    ?? item
                total = try Operators.binary(.add, total, term)
            }
            return total
        default:
            return try applyNumericFilter(name, to: value, arguments)
        }
    }

    private static func applyNumericFilter(
        _ name: String, to value: Value, _ arguments: CallArguments
    ) throws -> Value {
        switch name {
        case "abs":
            switch value {
            case .int(let number):
                guard number != .min else { throw EvalFailure("integer overflow in abs()") }
                return .int(Swift.abs(number))
            case .double(let number): return .double(Swift.abs(number))
            case .bool(let flag): return .int(flag ? 1 : 0)
            default: throw EvalFailure("bad operand type for abs(): '\(value.typeName)'")
            }
        case "int":
            let bound = try arguments.bind("int", ["default", "base"])
            let fallback = bound[0] ?? .int(0)
            let truncated = { (number: Double) -> Value in
                Int(exactly: number.rounded(.towardZero)).map { .int($0) } ?? fallback
            }
            switch value {
            case .undefined(let hint): throw EvalFailure(hint)
            case .double(let number): return truncated(number)
            case .string(let text):
                let trimmed = text.stripped().text.replacing("_", with: "")
                let radix = bound[1]?.integer ?? 10
                if (2...36).contains(radix), let number = Int(trimmed, radix: radix) {
                    return .int(number)
                }
                return Double(trimmed).map(truncated) ?? fallback
            default: return value.integer.map { .int($0) } ?? fallback
            }
        case "float":
            let fallback = try arguments.bind("float", ["default"])[0] ?? .double(0)
            if case .undefined(let hint) = value { throw EvalFailure(hint) }
            if case .string(let text) = value {
                return Double(text.stripped().text).map { .double($0) } ?? fallback
            }
            return value.number.map { .double($0) } ?? fallback
        case "round":
            let bound = try arguments.bind("round", ["precision", "method"])
            guard let number = value.number else {
                throw EvalFailure("round() needs a number, not \(value.typeName)")
            }
            let scale = pow(10.0, Double(bound[0]?.integer ?? 0))
            let method = bound[1]?.pythonString ?? "common"
            // "common" is Python's round(): halves go to the even neighbour.
            if method == "common", let integer = value.integer { return .int(integer) }
            let rule: FloatingPointRoundingRule =
                method == "ceil" ? .up : method == "floor" ? .down : .toNearestOrEven
            return .double((number * scale).rounded(rule) / scale)
        case "attr":
            let name = try arguments.bind("attr", ["name"], required: 1)[0]!.requireString(
                "attr name"
            ).text
            return try value.attribute(name)
        default:
            throw EvalFailure("filter '\(name)' is not implemented")
        }
    }

    /// `map('filter', args…)` or `map(attribute='x', default=…)`.
    private static func map(_ value: Value, _ arguments: CallArguments) throws -> [Value] {
        guard value.isTruthy else { return [] }  // jinja2 maps nothing over a falsy value.
        let items = try value.iterated()
        if let attribute = arguments.keyword.first(where: { $0.name == "attribute" })?.value {
            let fallback = arguments.keyword.first { $0.name == "default" }?.value
            return try items.map { item in
                let result = try item.attributePath(attribute)
                return result.isUndefined ? fallback ?? result : result
            }
        }
        guard let filter = arguments.positional.first else {
            throw EvalFailure("map() needs a filter name or attribute=")
        }
        let name = try filter.requireString("map filter").text
        guard names.contains(name) else { throw EvalFailure("no filter named '\(name)'") }
        let rest = CallArguments(
            positional: Array(arguments.positional.dropFirst()), keyword: arguments.keyword)
        return try items.map { try apply(name, to: $0, rest) }
    }

    /// `select`/`reject(test, args…)` and `selectattr`/`rejectattr(attribute, test, args…)`.
    private static func select(_ name: String, _ value: Value, _ arguments: CallArguments) throws
        -> [Value]
    {
        guard value.isTruthy else { return [] }  // As jinja2: a falsy value selects nothing.
        var positional = arguments.positional
        let usesAttribute = name.hasSuffix("attr")
        var attribute: Value?
        if usesAttribute {
            guard !positional.isEmpty else {
                throw EvalFailure("\(name)() needs an attribute name")
            }
            attribute = positional.removeFirst()
        }
        let test = try positional.first.map { try $0.requireString("test name").text }
        if let test, !TemplateTests.names.contains(test) {
            throw EvalFailure("no test named '\(test)'")
        }
        let testArguments = CallArguments(
            positional: Array(positional.dropFirst()), keyword: arguments.keyword)
        let keep = name.hasPrefix("select")
        return try value.iterated().filter { item in
            let subject = try attribute.map { try item.attributePath($0) } ?? item
            let passes =
                try test.map { try TemplateTests.apply($0, to: subject, testArguments) }
                ?? subject.isTruthy
            return passes == keep
        }
    }

    private static func orderingFilter(_ name: String, _ value: Value, _ arguments: CallArguments)
        throws -> Value
    {
        let parameters =
            name == "sort"
            ? ["reverse", "case_sensitive", "attribute"]
            : name == "dictsort"
                ? ["case_sensitive", "by", "reverse"] : ["case_sensitive", "attribute"]
        let bound = try arguments.bind(name, parameters)
        let caseSensitive = (name == "sort" ? bound[1] : bound[0])?.isTruthy ?? false
        func key(_ item: Value, _ attribute: Value?) throws -> Value {
            let subject =
                try attribute.map { $0.isNoneOrUndefined ? item : try item.attributePath($0) }
                ?? item
            if !caseSensitive, case .string(let text) = subject {
                return .string(text.text.lowercased())
            }
            return subject
        }
        switch name {
        case "sort":
            return .array(
                try stableSorted(
                    try value.iterated(), by: { try key($0, bound[2]) },
                    reverse: bound[0]?.isTruthy ?? false))
        case "dictsort":
            guard case .object(let object) = value else {
                throw EvalFailure("dictsort needs a mapping")
            }
            let position = bound[1]?.pythonString == "value" ? 1 : 0
            let pairs = object.pairs.map { Value.array([.string($0.key), $0.value]) }
            return .array(
                try stableSorted(
                    pairs, by: { try key(try $0.item(.int(position)), nil) },
                    reverse: bound[2]?.isTruthy ?? false))
        case "unique":
            var seen: [Value] = []
            var result: [Value] = []
            for item in try value.iterated() {
                let itemKey = try key(item, bound[1])
                if !seen.contains(where: { $0.isEqual(to: itemKey) }) {
                    seen.append(itemKey)
                    result.append(item)
                }
            }
            return .array(result)
        default:
            let ordered = try stableSorted(
                try value.iterated(), by: { try key($0, bound[1]) }, reverse: false)
            return (name == "min" ? ordered.first : ordered.last)
                ?? .undefined(hint: "No \(name) item, sequence was empty.")
        }
    }

    /// Python's `sorted(items, key=keyOf, reverse=reverse)`: stable in both directions, and
    /// failing like Python when two keys cannot be ordered.
    private static func stableSorted(
        _ items: [Value], by keyOf: (Value) throws -> Value, reverse: Bool
    ) throws -> [Value] {
        let keyed = try items.map { ($0, try keyOf($0)) }
        var failure: Error?
        let result = keyed.enumerated().sorted { a, b in
            do {
                if try a.element.1.isLess(than: b.element.1) { return !reverse }
                if try b.element.1.isLess(than: a.element.1) { return reverse }
            } catch { failure = error }
            return a.offset < b.offset
        }
        if let failure { throw failure }
        return result.map(\.element.0)
    }

    /// jinja2's `title` filter: capitalise after `-`, whitespace and opening brackets.
    private static func jinjaTitle(_ text: String) -> String {
        var result = ""
        var atWordStart = true
        for scalar in text.unicodeScalars {
            let isSeparator =
                scalar == "-" || scalar.isPythonWhitespace || "({[<".unicodeScalars.contains(scalar)
            result +=
                isSeparator
                ? String(scalar)
                : atWordStart ? String(scalar).uppercased() : String(scalar).lowercased()
            atWordStart = isSeparator
        }
        return result
    }

    private static func indent(_ text: String, _ arguments: CallArguments) throws -> String {
        let bound = try arguments.bind("indent", ["width", "first", "blank"])
        let indention: String
        switch bound[0] {
        case .string(let prefix)?: indention = prefix.text
        case let width?:
            let count = Swift.min(Swift.max(0, width.integer ?? 4), Operators.maximumRepetitionSize)
            indention = String(repeating: " ", count: count)
        case nil: indention = "    "
        }
        let lines = (text + "\n").pythonLines
        var result: String
        if bound[2]?.isTruthy ?? false {
            result = lines.joined(separator: "\n" + indention)
        } else {
            result = lines.first ?? ""
            let rest = lines.dropFirst().map { $0.isEmpty ? $0 : indention + $0 }
            if !rest.isEmpty { result += "\n" + rest.joined(separator: "\n") }
        }
        return (bound[1]?.isTruthy ?? false) ? indention + result : result
    }

    private static func htmlEscaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&#34;"
            case "'": result += "&#39;"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

extension Value {
    /// jinja2's attribute getter for filters: `"a.b"` walks items/attributes, digits index lists.
    func attributePath(_ path: Value) throws -> Value {
        if let index = path.integer { return try item(.int(index)) }
        var current = self
        for part in path.pythonString.split(separator: ".") {
            current =
                try Int(part).map { try current.item(.int($0)) }
                ?? current.item(.string(String(part)))
        }
        return current
    }
}

// Python methods templates call on values: `str.strip()`, `.split()`, `.startswith()`, …,
// `dict.get()`, `.items()`, `.keys()`, `.values()`. Mutating methods (`list.append`,
// `dict.update`) are absent, as in HF's ImmutableSandboxedEnvironment.

extension CallArguments {
    /// Binds arguments to `parameters` like a Python signature; omitted ones are nil.
    func bind(_ function: String, _ parameters: [String], required: Int = 0) throws -> [Value?] {
        guard positional.count <= parameters.count else {
            throw EvalFailure(
                "\(function)() takes at most \(parameters.count) argument(s) "
                    + "(\(positional.count) given)")
        }
        var bound: [Value?] =
            positional + Array(repeating: nil, count: parameters.count - positional.count)
        for (name, value) in keyword {
            guard let index = parameters.firstIndex(of: name) else {
                throw EvalFailure("\(function)() got an unexpected keyword argument '\(name)'")
            }
            guard bound[index] == nil else {
                throw EvalFailure("\(function)() got multiple values for '\(name)'")
            }
            bound[index] = value
        }
        for index in 0..<required where bound[index] == nil {
            throw EvalFailure("\(function)() missing required argument '\(parameters[index])'")
        }
        return bound
    }
}

extension Value {
    /// The argument as text; `what` names it in the error.
    func requireString(_ what: String) throws -> TaggedString {
        guard case .string(let text) = self else {
            throw EvalFailure("\(what) must be a string, not \(typeName)")
        }
        return text
    }

    /// None or a missing argument means "not given".
    var isNoneOrUndefined: Bool {
        switch self {
        case .none, .undefined: true
        default: false
        }
    }
}

enum Methods {
    /// The method `name` bound to `receiver`, or nil when the type has no such method.
    static func bound(_ name: String, on receiver: Value) -> Value? {
        let method: ((CallArguments) throws -> Value)?
        switch receiver {
        case .string(let text): method = stringMethod(name, text)
        case .object(let object): method = dictionaryMethod(name, object)
        case .array(let items): method = listMethod(name, items)
        default: method = nil
        }
        return method.map { .function(Function(name: name, call: $0)) }
    }

    private static func dictionaryMethod(_ name: String, _ object: ValueObject) -> (
        (CallArguments) throws -> Value
    )? {
        switch name {
        case "get":
            return { arguments in
                let bound = try arguments.bind("get", ["key", "default"], required: 1)
                guard case .string(let key) = bound[0]! else { return bound[1] ?? .none }
                return object[key.text] ?? bound[1] ?? .none
            }
        case "items":
            return { _ in .array(object.pairs.map { .array([.string($0.key), $0.value]) }) }
        case "keys":
            return { _ in .array(object.keys.map { .string($0) }) }
        case "values":
            return { _ in .array(object.values) }
        default:
            return nil
        }
    }

    private static func listMethod(_ name: String, _ items: [Value]) -> (
        (CallArguments) throws -> Value
    )? {
        switch name {
        case "count":
            return { arguments in
                let value = try arguments.bind("count", ["value"], required: 1)[0]!
                return .int(items.count { $0.isEqual(to: value) })
            }
        case "index":
            return { arguments in
                let value = try arguments.bind("index", ["value"], required: 1)[0]!
                guard let index = items.firstIndex(where: { $0.isEqual(to: value) }) else {
                    throw EvalFailure("\(value.pythonRepr) is not in list")
                }
                return .int(index)
            }
        default:
            return nil
        }
    }

    private typealias Method = (CallArguments) throws -> Value

    private static func stringMethod(_ name: String, _ text: TaggedString) -> Method? {
        markPreservingStringMethod(name, text) ?? plainStringMethod(name, text.text)
    }

    /// Methods whose results are pieces of the receiver, so assistant marks carry over.
    private static func markPreservingStringMethod(_ name: String, _ text: TaggedString) -> Method? {
        switch name {
        case "strip", "lstrip", "rstrip":
            return { arguments in
                let chars = try arguments.bind(name, ["chars"])[0]
                let set = try chars.flatMap {
                    $0.isNoneOrUndefined ? nil : try $0.requireString("chars").text
                }
                return .string(
                    text.stripped(set, leading: name != "rstrip", trailing: name != "lstrip"))
            }
        case "split":
            return { arguments in
                let bound = try arguments.bind("split", ["sep", "maxsplit"])
                let separator = try bound[0].flatMap {
                    $0.isNoneOrUndefined ? nil : try $0.requireString("sep").text
                }
                if separator == "" { throw EvalFailure("empty separator") }
                let pieces = text.split(separator: separator, maxSplits: bound[1]?.integer ?? -1)
                return .array(pieces.map { .string($0) })
            }
        case "join":
            return { arguments in
                let items = try arguments.bind("join", ["iterable"], required: 1)[0]!.iterated()
                var result = TaggedString()
                for (index, item) in items.enumerated() {
                    if index > 0 { result.append(text) }
                    result.append(try item.requireString("join item"))
                }
                return .string(result)
            }
        case "removeprefix", "removesuffix":
            return { arguments in
                let affix = try arguments.bind(name, ["affix"], required: 1)[0]!
                let bytes = Array(try affix.requireString("affix").text.utf8)
                let utf8 = Array(text.text.utf8)
                guard !bytes.isEmpty else { return .string(text) }
                if name == "removeprefix", utf8.starts(with: bytes) {
                    return .string(text.slice(utf8: bytes.count..<utf8.count))
                }
                if name == "removesuffix", utf8.reversed().starts(with: bytes.reversed()) {
                    return .string(text.slice(utf8: 0..<utf8.count - bytes.count))
                }
                return .string(text)
            }
        default:
            return nil
        }
    }

    /// Methods that build new text or answer questions about it.
    private static func plainStringMethod(_ name: String, _ plain: String) -> Method? {
        switch name {
        case "startswith", "endswith":
            return { arguments in
                let affixes = try arguments.bind(name, ["prefix"], required: 1)[0]!
                let candidates: [Value] =
                    if case .array(let items) = affixes { items } else { [affixes] }
                let scalars = Array(plain.unicodeScalars)
                return .bool(
                    try candidates.contains { candidate in
                        let affix = Array(
                            try candidate.requireString("\(name) argument").text.unicodeScalars)
                        return name == "startswith"
                            ? scalars.starts(with: affix)
                            : scalars.reversed().starts(with: affix.reversed())
                    })
            }
        case "upper": return { _ in .string(plain.uppercased()) }
        case "lower": return { _ in .string(plain.lowercased()) }
        case "title": return { _ in .string(plain.pythonTitle) }
        case "capitalize": return { _ in .string(plain.pythonCapitalized) }
        case "replace":
            return { arguments in
                let bound = try arguments.bind("replace", ["old", "new", "count"], required: 2)
                let old = try bound[0]!.requireString("old").text
                let new = try bound[1]!.requireString("new").text
                return .string(
                    plain.pythonReplacing(old, with: new, count: bound[2]?.integer ?? -1))
            }
        case "find", "count":
            return { arguments in
                let sub = try arguments.bind(name, ["sub"], required: 1)[0]!.requireString("sub")
                let positions = Array(plain.unicodeScalars).occurrences(
                    of: Array(sub.text.unicodeScalars))
                return .int(name == "count" ? positions.count : positions.first ?? -1)
            }
        case "splitlines":
            return { _ in .array(plain.pythonLines.map { .string($0) }) }
        case "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower":
            return { _ in .bool(plain.pythonPredicate(name)) }
        default:
            return nil
        }
    }
}

extension Array where Element: Equatable {
    /// Start indexes of non-overlapping occurrences of `needle` (empty needle: every position).
    func occurrences(of needle: [Element]) -> [Int] {
        guard !needle.isEmpty else { return [Int](0...count) }
        var result: [Int] = []
        var index = 0
        while index + needle.count <= count {
            if self[index..<index + needle.count].elementsEqual(needle) {
                result.append(index)
                index += needle.count
            } else {
                index += 1
            }
        }
        return result
    }
}

extension String {
    /// `str.replace(old, new, count)` on code points.
    func pythonReplacing(_ old: String, with new: String, count limit: Int = -1) -> String {
        let scalars = Array(unicodeScalars)
        let needle = Array(old.unicodeScalars)
        var positions = scalars.occurrences(of: needle)
        if limit >= 0 { positions = Array(positions.prefix(limit)) }
        var result = String.UnicodeScalarView()
        var index = 0
        for position in positions {
            result.append(contentsOf: scalars[index..<position])
            result.append(contentsOf: new.unicodeScalars)
            index = position + needle.count
            if needle.isEmpty, position < scalars.count {
                result.append(scalars[position])
                index = position + 1
            }
        }
        if index < scalars.count { result.append(contentsOf: scalars[index...]) }
        return String(result)
    }

    /// `str.splitlines()`: splits on every Python line boundary, dropping the terminators.
    var pythonLines: [String] {
        let breaks: Set<UInt32> = [0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029]
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        var previousCR = false
        for scalar in unicodeScalars {
            if scalar == "\n" && previousCR {
                previousCR = false
                continue
            }
            previousCR = scalar == "\r"
            if breaks.contains(scalar.value) {
                lines.append(String(current))
                current = String.UnicodeScalarView()
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { lines.append(String(current)) }
        return lines
    }

    /// `str.isdigit()` and friends (cased checks need at least one cased character).
    func pythonPredicate(_ name: String) -> Bool {
        let scalars = Array(unicodeScalars)
        guard !scalars.isEmpty else { return false }
        switch name {
        case "isdigit":
            return scalars.allSatisfy {
                $0.properties.numericType != nil && $0.properties.numericType != .numeric
            }
        case "isalpha": return scalars.allSatisfy(\.properties.isAlphabetic)
        case "isalnum":
            return scalars.allSatisfy {
                $0.properties.isAlphabetic || $0.properties.numericType != nil
            }
        case "isspace": return scalars.allSatisfy(\.isPythonWhitespace)
        case "isupper":
            return scalars.contains(where: \.properties.isCased)
                && !scalars.contains(where: \.properties.isLowercase)
        default:
            return scalars.contains(where: \.properties.isCased)
                && !scalars.contains(where: \.properties.isUppercase)
        }
    }
}

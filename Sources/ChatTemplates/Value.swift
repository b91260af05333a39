// The renderer's runtime value: JinjaValue plus what only exists inside a render (undefined,
// namespaces, macros and built-in functions), with strings carrying assistant-content marks.
// Truthiness, equality, ordering, `str()` and `repr()` follow Python, since jinja2 delegates
// to Python for all of them.

/// A failure inside an operation, before the evaluator attaches the template location.
struct EvalFailure: Error {
    var message: String
    /// Set by `raise_exception`: the template asked to fail with this message.
    var isRaisedByTemplate = false

    init(_ message: String, isRaisedByTemplate: Bool = false) {
        self.message = message
        self.isRaisedByTemplate = isRaisedByTemplate
    }
}

/// An insertion-ordered dictionary of runtime values.
struct ValueObject {
    private(set) var keys: [String] = []
    private var storage: [String: Value] = [:]

    init() {}

    init(_ pairs: [(String, Value)]) {
        for (key, value) in pairs { self[key] = value }
    }

    var count: Int { keys.count }

    subscript(key: String) -> Value? {
        get { storage[key] }
        set {
            guard let newValue else {
                if storage.removeValue(forKey: key) != nil { keys.removeAll { $0 == key } }
                return
            }
            if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
        }
    }

    var pairs: [(key: String, value: Value)] { keys.map { ($0, storage[$0]!) } }
    var values: [Value] { keys.map { storage[$0]! } }
}

/// `namespace(...)`: the one mutable object templates may create (reference semantics), so the one way a template
/// could build a cycle (a namespace inside itself) or nest values without bound (`ns.x = [ns.x]` in a loop); both
/// are refused when an attribute is assigned (`problem(storing:)`), so printing or freeing a value never recurses
/// without end.
final class Namespace {
    var attributes: ValueObject
    init(_ attributes: ValueObject) { self.attributes = attributes }

    static let maximumNesting = 64

    /// Why `value` may not become an attribute of this namespace, or nil.
    func problem(storing value: Value) -> String? {
        // One call per value (a lazy compactMap(...).first would evaluate the failing element twice per level).
        func check(_ v: Value, _ depth: Int) -> String? {
            guard depth <= Self.maximumNesting else {
                return "values nested deeper than \(Self.maximumNesting) levels"
            }
            let children: [Value]
            switch v {
            case .array(let items): children = items
            case .object(let object): children = object.values
            case .namespace(let other):
                if other === self { return "a namespace cannot hold itself" }
                children = other.attributes.values
            default: return nil
            }
            for child in children { if let problem = check(child, depth + 1) { return problem } }
            return nil
        }
        return check(value, 1)
    }
}

struct CallArguments {
    var positional: [Value] = []
    var keyword: [(name: String, value: Value)] = []
}

/// A built-in function, bound method or macro.
struct Function {
    var name: String
    var call: (CallArguments) throws -> Value
}

enum Value {
    /// A missing variable, attribute or item; `hint` says what was missing, for errors.
    case undefined(hint: String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(TaggedString)
    /// Python lists and tuples.
    case array([Value])
    case object(ValueObject)
    case namespace(Namespace)
    case function(Function)

    static func string(_ text: String) -> Value { .string(TaggedString(text)) }

    init(_ value: JinjaValue) {
        switch value {
        case .string(let text): self = .string(text)
        case .int(let number): self = .int(number)
        case .double(let number): self = .double(number)
        case .bool(let flag): self = .bool(flag)
        case .none: self = .none
        case .array(let items): self = .array(items.map(Value.init))
        case .dictionary(let object):
            self = .object(ValueObject(object.pairs.map { ($0.key, Value($0.value)) }))
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: "Undefined"
        case .none: "NoneType"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "str"
        case .array: "list"
        case .object: "dict"
        case .namespace: "Namespace"
        case .function: "function"
        }
    }

    /// Python truthiness (`Undefined` is false).
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let flag): flag
        case .int(let number): number != 0
        case .double(let number): number != 0
        case .string(let text): !text.text.isEmpty
        case .array(let items): !items.isEmpty
        case .object(let object): object.count > 0
        case .namespace, .function: true
        }
    }

    /// `str(value)` as jinja2 prints it; undefined prints as the empty string.
    var pythonString: String {
        switch self {
        case .undefined: ""
        case .string(let text): text.text
        default: pythonRepr
        }
    }

    /// `str(value)` keeping assistant marks when the value is a string.
    var taggedString: TaggedString {
        if case .string(let text) = self { return text }
        return TaggedString(pythonString)
    }

    /// `repr(value)`, used when containers are printed.
    var pythonRepr: String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case .bool(let flag): flag ? "True" : "False"
        case .int(let number): String(number)
        case .double(let number): pythonFloatRepr(number)
        case .string(let text): text.text.pythonRepr
        case .array(let items): "[" + items.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .object(let object):
            "{"
                + object.pairs.map { "\($0.key.pythonRepr): \($0.value.pythonRepr)" }.joined(
                    separator: ", ") + "}"
        case .namespace(let namespace):
            "<Namespace " + Value.object(namespace.attributes).pythonRepr + ">"
        case .function(let function): "<function \(function.name)>"
        }
    }

    /// Numeric view for arithmetic: bools count as 0/1 as in Python.
    var number: Double? {
        switch self {
        case .int(let number): Double(number)
        case .double(let number): number
        case .bool(let flag): flag ? 1 : 0
        default: nil
        }
    }

    var integer: Int? {
        switch self {
        case .int(let number): number
        case .bool(let flag): flag ? 1 : 0
        default: nil
        }
    }

    /// Python `==`.
    func isEqual(to other: Value) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a.text == b.text
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.isEqual(to: $1) }
        case (.object(let a), .object(let b)):
            return a.count == b.count
                && a.pairs.allSatisfy { pair in
                    b[pair.key].map { pair.value.isEqual(to: $0) } ?? false
                }
        case (.namespace(let a), .namespace(let b)): return a === b
        default:
            if let a = integer, let b = other.integer { return a == b }
            if let a = number, let b = other.number { return a == b }
            return false
        }
    }

    /// Python `<`; mixed types fail as in Python 3.
    func isLess(than other: Value) throws -> Bool {
        switch (self, other) {
        case (.string(let a), .string(let b)):
            return a.text.unicodeScalars.lexicographicallyPrecedes(b.text.unicodeScalars)
        case (.array(let a), .array(let b)):
            for (x, y) in zip(a, b) where !x.isEqual(to: y) { return try x.isLess(than: y) }
            return a.count < b.count
        default:
            if let a = integer, let b = other.integer { return a < b }
            if let a = number, let b = other.number { return a < b }
            throw EvalFailure(
                "'<' not supported between instances of '\(typeName)' and '\(other.typeName)'")
        }
    }

    /// Iteration as jinja2 does it: lists, dict keys, string characters; undefined is empty.
    func iterated() throws -> [Value] {
        switch self {
        case .undefined: return []
        case .array(let items): return items
        case .object(let object): return object.keys.map { .string($0) }
        case .string(let text):
            let offsets = text.scalarOffsets
            return (0..<offsets.count - 1).map {
                .string(text.slice(scalars: $0..<$0 + 1, offsets: offsets))
            }
        default: throw EvalFailure("'\(typeName)' object is not iterable")
        }
    }

    /// `len(value)`; undefined has length 0 as in jinja2.
    func length() throws -> Int {
        switch self {
        case .undefined: return 0
        case .string(let text): return text.text.unicodeScalars.count
        case .array(let items): return items.count
        case .object(let object): return object.count
        default: throw EvalFailure("object of type '\(typeName)' has no len()")
        }
    }
}

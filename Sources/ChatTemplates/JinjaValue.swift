// JinjaValue: the data a caller hands to a chat template (message fields, tools, extra
// variables). Its cases mirror the Python types that HF transformers passes to jinja2 in
// `apply_chat_template`: str, int, float, bool, None, list and dict (insertion-ordered).
// Template-internal objects (namespaces, macros, the `loop` variable, undefined) never
// leave the renderer, so they are not part of this public type.

/// A value passed into a chat template, modelled on the Python values jinja2 sees.
///
/// Literal syntax builds values directly:
/// `let tool: JinjaValue = ["name": "get_weather", "parameters": ["type": "object"]]`.
/// Dictionaries keep insertion order, as Python dicts do, so `tojson` output is stable.
public enum JinjaValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case none
    case array([JinjaValue])
    case dictionary(JinjaObject)
}

/// An insertion-ordered dictionary with string keys (a Python `dict` in a template).
public struct JinjaObject: Sendable, Equatable {
    /// Keys in insertion order.
    public private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    public init() {}

    /// Builds an object from key-value pairs; a repeated key keeps its first position and
    /// its last value, as a Python dict literal does.
    public init(_ pairs: [(String, JinjaValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    /// The number of keys.
    public var count: Int { keys.count }

    /// The value for `key`; assigning nil removes the key, assigning to a new key appends it.

    public subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// Key-value pairs in insertion order.
    public var pairs: [(key: String, value: JinjaValue)] {
        keys.map { ($0, storage[$0]!) }
    }

    /// Equal when both hold the same key-value pairs, in any order (as Python dicts compare).
    public static func == (lhs: JinjaObject, rhs: JinjaObject) -> Bool {
        lhs.storage == rhs.storage
    }
}

extension JinjaObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JinjaValue)...) {
        self.init(elements)
    }
}

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByNilLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .none }
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) {
        self = .dictionary(JinjaObject(elements))
    }
}

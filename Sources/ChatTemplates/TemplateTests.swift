// Jinja tests (`x is defined`, `x is not none`, `x is string`, …) after jinja2/tests.py (3.1).
// Python's type rules apply: bools are numbers, strings are iterable sequences, and an
// undefined value is iterable (and empty).

enum TemplateTests {
    static let names: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "==", "escaped", "even",
        "false", "float", "ge", ">=", "gt", ">", "greaterthan", "in", "integer", "iterable", "le",
        "<=", "lower", "lt", "<", "lessthan", "mapping", "ne", "!=", "none", "number", "odd",
        "sameas", "sequence", "string", "true", "undefined", "upper", "filter", "test",
    ]

    static func apply(_ name: String, to value: Value, _ arguments: CallArguments) throws -> Bool {
        func other() throws -> Value { try arguments.bind(name, ["other"], required: 1)[0]! }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "number": return value.number != nil
        case "string": if case .string = value { return true } else { return false }
        case "mapping": if case .object = value { return true } else { return false }
        case "callable":
            // An undefined value is callable in jinja2 (calling it raises the undefined error).
            switch value {
            case .function, .undefined: return true
            default: return false
            }
        case "iterable":
            switch value {
            case .undefined, .string, .array, .object: return true
            default: return false
            }
        case "sequence":
            switch value {
            case .undefined, .string, .array, .object: return true
            default: return false
            }
        case "escaped": return false
        case "odd", "even":
            // jinja2: `value % 2 == 1` (odd) or `== 0` (even), so floats are allowed.
            let remainder = try Operators.binary(.modulo, value, .int(2))
            return remainder.isEqual(to: .int(name == "odd" ? 1 : 0))
        case "divisibleby":
            guard let number = value.integer, let divisor = try other().integer, divisor != 0 else {
                throw EvalFailure("divisibleby needs non-zero integers")
            }
            return divisor == -1 || number % divisor == 0
        case "lower": return value.pythonString.pythonPredicate("islower")
        case "upper": return value.pythonString.pythonPredicate("isupper")
        case "eq", "equalto", "==": return value.isEqual(to: try other())
        case "ne", "!=": return !value.isEqual(to: try other())
        case "lt", "<", "lessthan": return try Operators.compare(.less, value, try other())
        case "le", "<=": return try Operators.compare(.lessOrEqual, value, try other())
        case "gt", ">", "greaterthan": return try Operators.compare(.greater, value, try other())
        case "ge", ">=": return try Operators.compare(.greaterOrEqual, value, try other())
        case "in": return try Operators.contains(try other(), value)
        case "sameas": return try isSame(value, try other())
        case "filter": return Filters.names.contains(value.pythonString)
        case "test": return names.contains(value.pythonString)
        default: throw EvalFailure("test '\(name)' is not implemented")
        }
    }

    /// Python `is`: identity. Singletons and small values compare by value; containers never
    /// match (each evaluation builds a new one) except the same namespace.
    private static func isSame(_ a: Value, _ b: Value) throws -> Bool {
        switch (a, b) {
        case (.none, .none): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.string(let x), .string(let y)): return x.text == y.text
        case (.namespace(let x), .namespace(let y)): return x === y
        default: return false
        }
    }
}

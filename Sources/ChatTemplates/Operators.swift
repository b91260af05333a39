// Python semantics for Jinja's operators: integer arithmetic stays integral (with overflow
// reported instead of trapping), `/` is true division, `//` and `%` floor towards negative
// infinity, `+` joins strings and lists, `*` repeats them, and using an undefined value in
// arithmetic or ordering fails with jinja2's "'x' is undefined" message.

import Foundation

enum Operators {
    static func unary(_ op: UnaryOperator, _ value: Value) throws -> Value {
        if case let .undefined(hint) = value { throw EvalFailure(hint) }
        switch (op, value) {
        case let (.negate, .double(number)): return .double(-number)
        case (.negate, _):
            guard let number = value.integer else {
                throw EvalFailure("bad operand type for unary -: '\(value.typeName)'")
            }
            let (result, overflow) = (0).subtractingReportingOverflow(number)
            guard !overflow else { throw EvalFailure("integer overflow") }
            return .int(result)
        case (.plus, .double), (.plus, .int): return value
        case (.plus, .bool(let flag)): return .int(flag ? 1 : 0)
        case (.plus, _): throw EvalFailure("bad operand type for unary +: '\(value.typeName)'")
        }
    }

    static func binary(_ op: BinaryOperator, _ left: Value, _ right: Value) throws -> Value {
        if case let .undefined(hint) = left { throw EvalFailure(hint) }
        if case let .undefined(hint) = right { throw EvalFailure(hint) }
        switch (op, left, right) {
        case let (.add, .string(a), .string(b)): return .string(a + b)
        case let (.add, .array(a), .array(b)): return .array(a + b)
        case (.add, .string, _), (.add, .array, _):
            throw EvalFailure("can only concatenate \(left.typeName) (not \"\(right.typeName)\") to \(left.typeName)")
        case let (.multiply, .string(text), _) where right.integer != nil:
            return .string(String(repeating: text.text, count: Swift.max(0, right.integer!)))
        case let (.multiply, _, .string(text)) where left.integer != nil:
            return .string(String(repeating: text.text, count: Swift.max(0, left.integer!)))
        case let (.multiply, .array(items), _) where right.integer != nil:
            return .array(Array(repeatElement(items, count: Swift.max(0, right.integer!)).joined()))
        default:
            return try arithmetic(op, left, right)
        }
    }

    private static func arithmetic(_ op: BinaryOperator, _ left: Value, _ right: Value) throws -> Value {
        guard let x = left.number, let y = right.number else {
            throw EvalFailure(
                "unsupported operand type(s) for \(op.rawValue): '\(left.typeName)' and '\(right.typeName)'")
        }
        if let a = left.integer, let b = right.integer {
            return try integerArithmetic(op, a, b)
        }
        switch op {
        case .add: return .double(x + y)
        case .subtract: return .double(x - y)
        case .multiply: return .double(x * y)
        case .divide:
            guard y != 0 else { throw EvalFailure("float division by zero") }
            return .double(x / y)
        case .floorDivide:
            guard y != 0 else { throw EvalFailure("float floor division by zero") }
            return .double((x / y).rounded(.down))
        case .modulo:
            guard y != 0 else { throw EvalFailure("float modulo") }
            let remainder = x.truncatingRemainder(dividingBy: y)
            return .double(remainder != 0 && (remainder < 0) != (y < 0) ? remainder + y : remainder)
        case .power:
            return .double(pow(x, y))
        }
    }

    private static func integerArithmetic(_ op: BinaryOperator, _ a: Int, _ b: Int) throws -> Value {
        func checked(_ result: (partialValue: Int, overflow: Bool)) throws -> Value {
            guard !result.overflow else { throw EvalFailure("integer overflow in '\(op.rawValue)'") }
            return .int(result.partialValue)
        }
        switch op {
        case .add: return try checked(a.addingReportingOverflow(b))
        case .subtract: return try checked(a.subtractingReportingOverflow(b))
        case .multiply: return try checked(a.multipliedReportingOverflow(by: b))
        case .divide:
            guard b != 0 else { throw EvalFailure("division by zero") }
            return .double(Double(a) / Double(b))
        case .floorDivide, .modulo:
            guard b != 0 else { throw EvalFailure("integer division or modulo by zero") }
            var quotient = a / b
            var remainder = a % b
            if remainder != 0 && (remainder < 0) != (b < 0) {
                quotient -= 1
                remainder += b
            }
            return .int(op == .floorDivide ? quotient : remainder)
        case .power:
            guard b >= 0 else { return .double(pow(Double(a), Double(b))) }
            var result = 1
            for _ in 0..<b { result = try checked(result.multipliedReportingOverflow(by: a)).integer! }
            return .int(result)
        }
    }

    static func compare(_ op: CompareOperator, _ left: Value, _ right: Value) throws -> Bool {
        switch op {
        case .equal: return left.isEqual(to: right)
        case .notEqual: return !left.isEqual(to: right)
        case .contains: return try contains(right, left)
        case .notContains: return !(try contains(right, left))
        default:
            if case let .undefined(hint) = left { throw EvalFailure(hint) }
            if case let .undefined(hint) = right { throw EvalFailure(hint) }
            switch op {
            case .less: return try left.isLess(than: right)
            case .lessOrEqual: return try left.isLess(than: right) || left.isEqual(to: right)
            case .greater: return try right.isLess(than: left)
            default: return try right.isLess(than: left) || left.isEqual(to: right)
            }
        }
    }

    /// Python `item in container`.
    static func contains(_ container: Value, _ item: Value) throws -> Bool {
        switch container {
        case .undefined: return false
        case let .string(text):
            guard case let .string(needle) = item else {
                throw EvalFailure("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return needle.text.isEmpty || text.text.unicodeScalars.firstRange(of: needle.text.unicodeScalars) != nil
        case let .array(items): return items.contains { $0.isEqual(to: item) }
        case let .object(object):
            guard case let .string(key) = item else { return false }
            return object[key.text] != nil
        default: throw EvalFailure("argument of type '\(container.typeName)' is not iterable")
        }
    }
}

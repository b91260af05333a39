// Python semantics for Jinja's operators: integer arithmetic stays integral (with overflow
// reported instead of trapping), `/` is true division, `//` and `%` floor towards negative
// infinity, `+` joins strings and lists, `*` repeats them, and using an undefined value in
// arithmetic or ordering fails with jinja2's "'x' is undefined" message.

import Foundation

enum Operators {
    static func unary(_ op: UnaryOperator, _ value: Value) throws -> Value {
        if case .undefined(let hint) = value { throw EvalFailure(hint) }
        switch (op, value) {
        case (.negate, .double(let number)): return .double(-number)
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
        if case .undefined(let hint) = left { throw EvalFailure(hint) }
        if case .undefined(let hint) = right { throw EvalFailure(hint) }
        switch (op, left, right) {
        case (.add, .string(let a), .string(let b)): return .string(a + b)
        case (.add, .array(let a), .array(let b)): return .array(a + b)
        case (.add, .string, _), (.add, .array, _):
            let (type, other) = (left.typeName, right.typeName)
            throw EvalFailure("can only concatenate \(type) (not \"\(other)\") to \(type)")
        case (.multiply, .string(let text), _) where right.integer != nil:
            let count = try repetitions(right.integer!, of: text.utf8Count)
            return .string(String(repeating: text.text, count: count))
        case (.multiply, _, .string(let text)) where left.integer != nil:
            let count = try repetitions(left.integer!, of: text.utf8Count)
            return .string(String(repeating: text.text, count: count))
        case (.multiply, .array(let items), _) where right.integer != nil:
            let count = try repetitions(right.integer!, of: items.count)
            return .array(Array(repeatElement(items, count: count).joined()))
        case (.multiply, _, .array(let items)) where left.integer != nil:
            let count = try repetitions(left.integer!, of: items.count)
            return .array(Array(repeatElement(items, count: count).joined()))
        case (.modulo, .string(let format), _):
            return .string(try printfFormat(format.text, right))
        default:
            return try arithmetic(op, left, right)
        }
    }

    /// Largest string (bytes) or list (items) that `*` may build.
    static let maximumRepetitionSize = 1 << 24

    private static func repetitions(_ count: Int, of size: Int) throws -> Int {
        let count = Swift.max(0, count)
        let (total, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow, total <= maximumRepetitionSize else {
            throw EvalFailure("repetition result would exceed \(maximumRepetitionSize) elements")
        }
        return count
    }

    private static func arithmetic(_ op: BinaryOperator, _ left: Value, _ right: Value) throws
        -> Value
    {
        guard let x = left.number, let y = right.number else {
            throw EvalFailure(
                "unsupported operand type(s) for \(op.rawValue): '\(left.typeName)' and "
                    + "'\(right.typeName)'")
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
            guard !result.overflow else {
                throw EvalFailure("integer overflow in '\(op.rawValue)'")
            }
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
            if b == -1 {  // Int.min / -1 traps in Swift; Python would promote to a big int.
                return op == .modulo ? .int(0) : try checked((0).subtractingReportingOverflow(a))
            }
            var quotient = a / b
            var remainder = a % b
            if remainder != 0 && (remainder < 0) != (b < 0) {
                quotient -= 1
                remainder += b
            }
            return .int(op == .floorDivide ? quotient : remainder)
        case .power:
            guard b >= 0 else { return .double(pow(Double(a), Double(b))) }
            // Exponentiation by squaring: O(log b) steps, overflow reported.
            var (result, base, exponent) = (1, a, b)
            while exponent > 0 {
                if exponent & 1 == 1 {
                    result = try checked(result.multipliedReportingOverflow(by: base)).integer!
                }
                exponent >>= 1
                if exponent > 0 {
                    base = try checked(base.multipliedReportingOverflow(by: base)).integer!
                }
            }
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
            if case .undefined(let hint) = left { throw EvalFailure(hint) }
            if case .undefined(let hint) = right { throw EvalFailure(hint) }
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
        case .string(let text):
            guard case .string(let needle) = item else {
                throw EvalFailure(
                    "'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return needle.text.isEmpty
                || text.text.unicodeScalars.firstRange(of: needle.text.unicodeScalars) != nil
        case .array(let items): return items.contains { $0.isEqual(to: item) }
        case .object(let object):
            switch item {
            case .string(let key): return object[key.text] != nil
            case .array, .object, .namespace:
                throw EvalFailure("unhashable type: '\(item.typeName)'")
            default: return false
            }
        default: throw EvalFailure("argument of type '\(container.typeName)' is not iterable")
        }
    }
}

// Expression evaluation: names, literals, attribute and item access (jinja2's getattr-then-
// getitem rule), slices, calls, filters, tests and operators with Python semantics. Errors
// raised by operations are located at the innermost expression that failed.

extension Interpreter {
    func evaluate(_ expr: Expr) throws -> Value {
        try located(expr.location) {
            try tick()
            let value = try evaluateUnlocated(expr)
            switch value {
            case .string(let text): try Self.checkSize(text.utf8Count, of: "a string")
            case .array(let items) where items.count > Operators.maximumRepetitionSize:
                throw EvalFailure("a list would exceed \(Operators.maximumRepetitionSize) items")
            default: break
            }
            return value
        }
    }

    func evaluate(_ arguments: Arguments) throws -> CallArguments {
        CallArguments(
            positional: try arguments.positional.map { try evaluate($0) },
            keyword: try arguments.keyword.map { ($0.name, try evaluate($0.value)) })
    }

    private func evaluateUnlocated(_ expr: Expr) throws -> Value {
        switch expr.kind {
        case .none: return .none
        case .bool(let flag): return .bool(flag)
        case .integer(let number): return .int(number)
        case .float(let number): return .double(number)
        case .string(let text): return .string(text)
        case .name(let name): return lookup(name)
        case .list(let items), .tuple(let items):
            return .array(try items.map { try evaluate($0) })
        case .dictionary(let entries):
            var object = ValueObject()
            for entry in entries {
                guard case .string(let key) = try evaluate(entry.key) else {
                    throw EvalFailure("dictionary keys must be strings")
                }
                object[key.text] = try evaluate(entry.value)
            }
            return .object(object)
        case .attribute(let base, let name):
            return try evaluate(base).attribute(name)
        case .item(let base, let index):
            return try evaluate(base).item(try evaluate(index))
        case .slice(let base, let start, let stop, let step):
            return try evaluate(base).sliced(
                start: try start.map { try evaluate($0) }, stop: try stop.map { try evaluate($0) },
                step: try step.map { try evaluate($0) })
        case .call(let callee, let arguments):
            let function = try evaluate(callee)
            guard case .function(let body) = function else {
                if case .undefined(let hint) = function { throw EvalFailure(hint) }
                throw EvalFailure("'\(function.typeName)' object is not callable")
            }
            return try body.call(try evaluate(arguments))
        case .filter(let base, let name, let arguments):
            return try Filters.apply(name, to: try evaluate(base), try evaluate(arguments))
        case .test(let base, let name, let arguments, let negated):
            let result = try TemplateTests.apply(
                name, to: try evaluate(base), try evaluate(arguments))
            return .bool(result != negated)
        case .unary(let op, let operand):
            return try Operators.unary(op, try evaluate(operand))
        case .binary(let op, let left, let right):
            return try Operators.binary(op, try evaluate(left), try evaluate(right))
        case .and(let left, let right):
            let value = try evaluate(left)
            return value.isTruthy ? try evaluate(right) : value
        case .or(let left, let right):
            let value = try evaluate(left)
            return value.isTruthy ? value : try evaluate(right)
        case .not(let operand):
            return .bool(!(try evaluate(operand).isTruthy))
        case .compare(let first, let operations):
            var left = try evaluate(first)
            for (op, rightExpr) in operations {
                let right = try evaluate(rightExpr)
                guard try Operators.compare(op, left, right) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .concat(let parts):
            var result = TaggedString()
            for part in parts { result.append(try evaluate(part).taggedString) }
            return .string(result)
        case .conditional(let condition, let then, let otherwise):
            if try evaluate(condition).isTruthy { return try evaluate(then) }
            return try otherwise.map { try evaluate($0) }
                ?? .undefined(hint: "the conditional expression had no else")
        }
    }
}

extension Value {
    /// `value.name`: jinja2 tries the Python attribute first (so `d.items` is the method),
    /// then the item.
    func attribute(_ name: String) throws -> Value {
        switch self {
        case .undefined(let hint):
            throw EvalFailure(hint)
        case .object(let object):
            if let method = Methods.bound(name, on: self) { return method }
            return object[name] ?? .undefined(hint: "'dict object' has no attribute '\(name)'")
        case .namespace(let namespace):
            return namespace.attributes[name]
                ?? .undefined(hint: "'Namespace' object has no attribute '\(name)'")
        default:
            if let method = Methods.bound(name, on: self) { return method }
            return .undefined(hint: "'\(typeName) object' has no attribute '\(name)'")
        }
    }

    /// `value[key]`: Python indexing (negative indexes count from the end); missing → undefined.
    func item(_ key: Value) throws -> Value {
        switch (self, key) {
        case (.undefined(let hint), _):
            throw EvalFailure(hint)
        case (.object(let object), .string(let name)):
            return object[name.text]
                ?? .undefined(hint: "'dict object' has no attribute '\(name.text)'")
        case (.namespace, .string(let name)):
            return try attribute(name.text)
        case (.array, _), (.string, _):
            guard let index = key.integer else {
                if case .string(let name) = key { return try attribute(name.text) }
                throw EvalFailure("\(typeName) indices must be integers, not \(key.typeName)")
            }
            let items = try iterated()
            let position = index < 0 ? index + items.count : index
            guard items.indices.contains(position) else {
                return .undefined(hint: "\(typeName) index \(index) out of range")
            }
            return items[position]
        default:
            if case .string(let name) = key { return try attribute(name.text) }
            return .undefined(hint: "'\(typeName) object' has no item \(key.pythonRepr)")
        }
    }

    /// `value[start:stop:step]` on lists and strings, with Python's clamping rules.
    func sliced(start: Value?, stop: Value?, step: Value?) throws -> Value {
        func bound(_ value: Value?) throws -> Int? {
            guard let value, !value.isUndefined else { return nil }
            if case .none = value { return nil }
            guard let number = value.integer else {
                throw EvalFailure("slice indices must be integers or None, not \(value.typeName)")
            }
            return number
        }
        let stride = try bound(step) ?? 1
        guard stride != 0 else { throw EvalFailure("slice step cannot be zero") }
        let items: [Value]
        switch self {
        case .array, .string: items = try iterated()
        case .undefined(let hint): throw EvalFailure(hint)
        // Unlike item access, jinja2 passes slices straight to Python, so these fail.
        case .object: throw EvalFailure("unhashable type: 'slice'")
        default: throw EvalFailure("'\(typeName)' object is not subscriptable")
        }
        let count = items.count
        func clamp(_ index: Int?, _ fallback: Int) -> Int {
            guard var index else { return fallback }
            if index < 0 { index += count }
            return stride > 0
                ? Swift.min(Swift.max(index, 0), count) : Swift.min(Swift.max(index, -1), count - 1)
        }
        let first = clamp(try bound(start), stride > 0 ? 0 : count - 1)
        let end = clamp(try bound(stop), stride > 0 ? count : -1)
        var indices: [Int] = []
        var index = first
        while stride > 0 ? index < end : index > end {
            indices.append(index)
            let (next, overflow) = index.addingReportingOverflow(stride)
            if overflow { break }
            index = next
        }
        guard case .string(let text) = self else { return .array(indices.map { items[$0] }) }
        if stride == 1 {
            guard let lower = indices.first else { return .string("") }
            return .string(
                text.slice(scalars: lower..<indices.last! + 1, offsets: text.scalarOffsets))
        }
        return .string(indices.map { items[$0].pythonString }.joined())
    }
}

// Tree-walking renderer for parsed templates. Scoping follows jinja2: `for` bodies and `with`
// blocks get a fresh scope per iteration (so `set` inside a loop does not leak, which is why
// templates use `namespace()`), `if` does not, and macros see the root scope plus their
// parameters. Output is a TaggedString so assistant-content marks survive to the result.

import Foundation

final class Interpreter {
    enum Flow {
        case normal, breakLoop, continueLoop
    }

    /// Marks with this message index delimit `{% generation %}` blocks.
    static let generationMark = -1

    /// Innermost scope last; index 0 holds the render context, globals and top-level sets.
    private var scopes: [[String: Value]]
    /// Active macro calls; bounded so a recursive macro fails instead of overflowing the stack.
    private var macroDepth = 0
    static let maximumMacroDepth = 32

    // Work bounds: a chat template comes from a model file, i.e. from the internet. Real templates take about a
    // hundred steps per message and microseconds; a runaway one (nested loops over range(100000), a string doubled in a
    // loop) fails with its location instead of hanging or exhausting memory. A step is a node executed, a loop
    // iteration or an expression evaluated.
    static let maximumSteps = 1_000_000
    static let maximumSeconds = 10.0
    /// Largest string a value or the output may grow to (UTF-8 bytes).
    static let maximumStringBytes = 1 << 26
    private var steps = 0
    private let deadline: Date

    init(context: [String: Value]) {
        scopes = [context]
        deadline = Date().addingTimeInterval(Self.maximumSeconds)
    }

    /// Counts one step; throws past the step or time budget.
    func tick() throws {
        steps += 1
        if steps > Self.maximumSteps {
            throw EvalFailure("the template ran more than \(Self.maximumSteps) steps (a runaway loop?)")
        }
        if steps & 4095 == 0 && Date() > deadline {
            throw EvalFailure("the template ran longer than \(Int(Self.maximumSeconds)) seconds")
        }
    }

    /// Throws when `count` UTF-8 bytes exceed `maximumStringBytes`.
    static func checkSize(_ count: Int, of what: String) throws {
        if count > maximumStringBytes {
            throw EvalFailure("\(what) would exceed \(maximumStringBytes >> 20) MiB")
        }
    }

    func render(_ nodes: [Node]) throws -> TaggedString {
        var output = TaggedString()
        _ = try execute(nodes, into: &output)
        return output
    }

    func lookup(_ name: String) -> Value {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        return .undefined(hint: "'\(name)' is undefined")
    }

    private func assign(_ target: AssignTarget, _ value: Value, location: TemplateLocation) throws {
        switch target {
        case .name(let name):
            scopes[scopes.count - 1][name] = value
        case .tuple(let names):
            let items = try unpack(value, count: names.count, location: location)
            for (name, item) in zip(names, items) { scopes[scopes.count - 1][name] = item }
        case .attribute(let object, let attribute):
            guard case .namespace(let namespace) = lookup(object) else {
                throw TemplateError.runtime(
                    message:
                        "cannot assign attribute '\(attribute)' on '\(object)': only namespace() "
                        + "objects accept attribute assignment",
                    location: location)
            }
            if let problem = namespace.problem(storing: value) {
                throw TemplateError.runtime(
                    message: "cannot assign '\(object).\(attribute)': \(problem)", location: location)
            }
            namespace.attributes[attribute] = value
        }
    }

    private func unpack(_ value: Value, count: Int, location: TemplateLocation) throws -> [Value] {
        let items: [Value]
        do { items = try value.iterated() } catch let failure as EvalFailure {
            throw TemplateError.runtime(
                message: "cannot unpack: \(failure.message)", location: location)
        }
        guard items.count == count else {
            throw TemplateError.runtime(
                message: "cannot unpack \(items.count) value(s) into \(count) name(s)",
                location: location)
        }
        return items
    }

    func execute(_ nodes: [Node], into output: inout TaggedString) throws -> Flow {
        for node in nodes {
            try located(node.location) {
                try tick()
                try Self.checkSize(output.utf8Count, of: "the rendered text")
            }
            switch node.kind {
            case .text(let text):
                output.append(text)
            case .output(let expr):
                output.append(try evaluate(expr).taggedString)
            case .ifChain(let branches, let elseBody):
                var body = elseBody
                for branch in branches {
                    if try evaluate(branch.condition).isTruthy {
                        body = branch.body
                        break
                    }
                }
                let flow = try execute(body, into: &output)
                if flow != .normal { return flow }
            case .forLoop(let loop):
                try executeFor(loop, location: node.location, into: &output)
            case .set(let target, let expr):
                try assign(target, try evaluate(expr), location: node.location)
            case .setBlock(let target, let filters, let body):
                var captured = TaggedString()
                _ = try execute(body, into: &captured)
                try assign(
                    target, try applyFilters(filters, to: .string(captured)),
                    location: node.location)
            case .macro(let macro):
                scopes[scopes.count - 1][macro.name] = .function(
                    Function(name: macro.name) { [unowned self] arguments in
                        try self.call(macro, arguments, location: node.location)
                    })
            case .breakLoop:
                return .breakLoop
            case .continueLoop:
                return .continueLoop
            case .with(let assignments, let body):
                scopes.append([:])
                defer { scopes.removeLast() }
                for (target, expr) in assignments {
                    try assign(target, try evaluate(expr), location: node.location)
                }
                let flow = try execute(body, into: &output)
                if flow != .normal { return flow }
            case .filterBlock(let filters, let body):
                var captured = TaggedString()
                _ = try execute(body, into: &captured)
                output.append(try applyFilters(filters, to: .string(captured)).taggedString)
            case .generation(let body):
                var captured = TaggedString()
                let flow = try execute(body, into: &captured)
                captured.markWhole(as: Self.generationMark)
                output.append(captured)
                if flow != .normal { return flow }
            }
        }
        return .normal
    }

    private func applyFilters(_ filters: [FilterCall], to value: Value) throws -> Value {
        var result = value
        for filter in filters {
            let arguments = try evaluate(filter.arguments)
            result = try located(filter.location) {
                try Filters.apply(filter.name, to: result, arguments)
            }
        }
        return result
    }

    private func executeFor(
        _ loop: ForLoop, location: TemplateLocation, into output: inout TaggedString
    ) throws {
        let iterable = try evaluate(loop.iterable)
        var items = try located(loop.iterable.location) { try iterable.iterated() }
        if let filter = loop.filter {
            items = try items.filter { item in
                scopes.append([:])
                defer { scopes.removeLast() }
                try assign(loop.target, item, location: location)
                return try evaluate(filter).isTruthy
            }
        }
        if items.isEmpty {
            _ = try execute(loop.elseBody, into: &output)
            return
        }
        for (index, item) in items.enumerated() {
            try located(location) { try tick() }
            scopes.append(["loop": loopVariable(items, index)])
            defer { scopes.removeLast() }
            try assign(loop.target, item, location: location)
            if try execute(loop.body, into: &output) == .breakLoop { break }
        }
    }

    /// jinja2's `loop` object for iteration `index` over `items`.
    private func loopVariable(_ items: [Value], _ index: Int) -> Value {
        let count = items.count
        var loop = ValueObject()
        loop["index"] = .int(index + 1)
        loop["index0"] = .int(index)
        loop["revindex"] = .int(count - index)
        loop["revindex0"] = .int(count - index - 1)
        loop["first"] = .bool(index == 0)
        loop["last"] = .bool(index == count - 1)
        loop["length"] = .int(count)
        loop["depth"] = .int(1)
        loop["depth0"] = .int(0)
        loop["previtem"] =
            index > 0 ? items[index - 1] : .undefined(hint: "there is no previous item")
        loop["nextitem"] =
            index + 1 < count ? items[index + 1] : .undefined(hint: "there is no next item")
        loop["cycle"] = .function(
            Function(name: "cycle") { arguments in
                guard !arguments.positional.isEmpty else {
                    throw EvalFailure("no items for cycling given")
                }
                return arguments.positional[index % arguments.positional.count]
            })
        return .object(loop)
    }

    private func call(_ macro: Macro, _ arguments: CallArguments, location: TemplateLocation) throws
        -> Value
    {
        guard macroDepth < Self.maximumMacroDepth else {
            throw EvalFailure(
                "macro '\(macro.name)' recursed deeper than \(Self.maximumMacroDepth) calls")
        }
        macroDepth += 1
        defer { macroDepth -= 1 }
        guard arguments.positional.count <= macro.parameters.count else {
            throw EvalFailure(
                "macro '\(macro.name)' takes not more than \(macro.parameters.count) argument(s)")
        }
        var locals: [String: Value] = [:]
        for (parameter, value) in zip(macro.parameters, arguments.positional) {
            locals[parameter.name] = value
        }
        for (name, value) in arguments.keyword {
            guard macro.parameters.contains(where: { $0.name == name }) else {
                throw EvalFailure("macro '\(macro.name)' has no parameter named '\(name)'")
            }
            locals[name] = value
        }
        let saved = scopes
        scopes = [scopes[0], locals]
        defer { scopes = saved }
        for parameter in macro.parameters where locals[parameter.name] == nil {
            scopes[1][parameter.name] =
                try parameter.defaultValue.map { try evaluate($0) }
                ?? .undefined(hint: "parameter '\(parameter.name)' was not provided")
        }
        var output = TaggedString()
        _ = try execute(macro.body, into: &output)
        return .string(output)
    }

    /// Runs `body`, turning an `EvalFailure` into a `TemplateError` at `location`.
    func located<T>(_ location: TemplateLocation, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as EvalFailure {
            throw failure.isRaisedByTemplate
                ? TemplateError.raisedException(message: failure.message, location: location)
                : TemplateError.runtime(message: failure.message, location: location)
        }
    }
}

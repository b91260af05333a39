// Expression parser with jinja2's precedence (jinja2/parser.py): conditional < or < and < not
// < comparisons < + - < ~ < * / // % < ** < unary - + < filters and tests < postfix (. [] ()).
// Filters bind tighter than `+`, so `'a' + x | trim` trims only `x`, as in Jinja.

extension Parser {
    /// An expression, or a tuple when commas follow (`{{ a, b }}`, `{% set a, b = 1, 2 %}`).
    mutating func parseTuple(
        withCondexpr: Bool = true, extraEndNames: Set<String> = [],
        explicitParentheses: Bool = false
    ) throws(TemplateError) -> Expr {
        let location = current.location
        var items: [Expr] = []
        var sawComma = false
        while true {
            if !items.isEmpty {
                guard skipIf(op: ",") else { break }
                sawComma = true
            }
            if isTupleEnd(extraEndNames) { break }
            items.append(withCondexpr ? try parseExpression() : try parseOr())
        }
        if !sawComma {
            if let only = items.first { return only }
            guard explicitParentheses else { throw unexpected(expected: "an expression") }
        }
        return Expr(kind: .tuple(items), location: location)
    }

    private func isTupleEnd(_ extraEndNames: Set<String>) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .eof: return true
        case .op(let op): return op == ")" || op == "]" || op == "}"
        case .name(let name): return extraEndNames.contains(name)
        default: return false
        }
    }

    mutating func parseExpression() throws(TemplateError) -> Expr {
        try nested { (parser: inout Parser) throws(TemplateError) in try parser.parseConditional() }
    }

    private mutating func parseConditional() throws(TemplateError) -> Expr {
        var expr = try parseOr()
        while isName("if") {
            let location = current.location
            _ = advance()
            let condition = try parseOr()
            let otherwise = skipIf(name: "else") ? try parseExpression() : nil
            expr = Expr(
                kind: .conditional(condition: condition, then: expr, otherwise: otherwise),
                location: location)
        }
        return expr
    }

    private mutating func parseOr() throws(TemplateError) -> Expr {
        var left = try parseAnd()
        while isName("or") {
            let location = advance().location
            left = Expr(kind: .or(left, try parseAnd()), location: location)
        }
        return left
    }

    private mutating func parseAnd() throws(TemplateError) -> Expr {
        var left = try parseNot()
        while isName("and") {
            let location = advance().location
            left = Expr(kind: .and(left, try parseNot()), location: location)
        }
        return left
    }

    private mutating func parseNot() throws(TemplateError) -> Expr {
        if isName("not") {
            let location = advance().location
            let operand = try nested { (parser: inout Parser) throws(TemplateError) in
                try parser.parseNot()
            }
            return Expr(kind: .not(operand), location: location)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws(TemplateError) -> Expr {
        let first = try parseMath1()
        var operations: [(CompareOperator, Expr)] = []
        while true {
            if case .op(let op) = current.kind, let compare = CompareOperator(rawValue: op),
                op != "in"
            {
                _ = advance()
                operations.append((compare, try parseMath1()))
            } else if isName("in") {
                _ = advance()
                operations.append((.contains, try parseMath1()))
            } else if isName("not"), isName("in", next) {
                _ = advance()
                _ = advance()
                operations.append((.notContains, try parseMath1()))
            } else {
                break
            }
        }
        return operations.isEmpty
            ? first : Expr(kind: .compare(first, operations), location: first.location)
    }

    private mutating func parseBinary(
        _ ops: [String: BinaryOperator], operand: (inout Parser) throws(TemplateError) -> Expr
    ) throws(TemplateError) -> Expr {
        var left = try operand(&self)
        while case .op(let op) = current.kind, let binary = ops[op] {
            let location = advance().location
            let right = try operand(&self)
            left = Expr(kind: .binary(binary, left, right), location: location)
        }
        return left
    }

    private mutating func parseMath1() throws(TemplateError) -> Expr {
        try parseBinary(["+": .add, "-": .subtract]) {
            (parser: inout Parser) throws(TemplateError) in
            try parser.parseConcat()
        }
    }

    private mutating func parseConcat() throws(TemplateError) -> Expr {
        let first = try parseMath2()
        var parts = [first]
        while skipIf(op: "~") { parts.append(try parseMath2()) }
        return parts.count == 1 ? first : Expr(kind: .concat(parts), location: first.location)
    }

    private mutating func parseMath2() throws(TemplateError) -> Expr {
        try parseBinary(["*": .multiply, "/": .divide, "//": .floorDivide, "%": .modulo]) {
            (parser: inout Parser) throws(TemplateError) in try parser.parsePower()
        }
    }

    private mutating func parsePower() throws(TemplateError) -> Expr {
        try parseBinary(["**": .power]) { (parser: inout Parser) throws(TemplateError) in
            try parser.parseUnary()
        }
    }

    private mutating func parseUnary(withFilters: Bool = true) throws(TemplateError) -> Expr {
        let location = current.location
        var expr: Expr
        if isOp("-") || isOp("+") {
            let op: UnaryOperator = advance().kind == .op("-") ? .negate : .plus
            let operand = try nested { (parser: inout Parser) throws(TemplateError) in
                try parser.parseUnary(withFilters: false)
            }
            expr = Expr(kind: .unary(op, operand), location: location)
        } else {
            expr = try parsePostfix(try parsePrimary())
        }
        return withFilters ? try parseFilterExpression(expr) : expr
    }

    private mutating func parsePrimary() throws(TemplateError) -> Expr {
        let token = current
        let kind: Expr.Kind
        switch token.kind {
        case .name(let name):
            _ = advance()
            switch name {
            case "true", "True": kind = .bool(true)
            case "false", "False": kind = .bool(false)
            case "none", "None": kind = .none
            default: kind = .name(name)
            }
        case .string(var value):
            _ = advance()
            while case .string(let more) = current.kind {
                value += more
                _ = advance()
            }
            kind = .string(value)
        case .integer(let value):
            _ = advance()
            kind = .integer(value)
        case .float(let value):
            _ = advance()
            kind = .float(value)
        case .op("("):
            _ = advance()
            let inner = try parseTuple(explicitParentheses: true)
            try expect(op: ")")
            return inner
        case .op("["):
            _ = advance()
            var items: [Expr] = []
            while !skipIf(op: "]") {
                if !items.isEmpty {
                    try expect(op: ",")
                    if skipIf(op: "]") { break }
                }
                items.append(try parseExpression())
            }
            kind = .list(items)
        case .op("{"):
            _ = advance()
            var entries: [DictionaryEntry] = []
            while !skipIf(op: "}") {
                if !entries.isEmpty {
                    try expect(op: ",")
                    if skipIf(op: "}") { break }
                }
                let key = try parseExpression()
                try expect(op: ":")
                entries.append(DictionaryEntry(key: key, value: try parseExpression()))
            }
            kind = .dictionary(entries)
        default:
            throw unexpected(expected: "an expression")
        }
        return Expr(kind: kind, location: token.location)
    }

    private mutating func parsePostfix(_ base: Expr) throws(TemplateError) -> Expr {
        var expr = base
        while true {
            let location = current.location
            if skipIf(op: ".") {
                switch current.kind {
                case .name(let name):
                    _ = advance()
                    expr = Expr(kind: .attribute(expr, name), location: location)
                case .integer(let value):
                    _ = advance()
                    expr = Expr(
                        kind: .item(expr, Expr(kind: .integer(value), location: location)),
                        location: location)
                default:
                    throw unexpected(expected: "an attribute name after '.'")
                }
            } else if skipIf(op: "[") {
                expr = try parseSubscript(expr, location: location)
            } else if isOp("(") {
                expr = Expr(kind: .call(expr, try parseCallArguments()), location: expr.location)
            } else {
                return expr
            }
        }
    }

    /// `[index]` or `[start:stop:step]`; the opening bracket is already consumed.
    private mutating func parseSubscript(_ base: Expr, location: TemplateLocation)
        throws(TemplateError) -> Expr
    {
        var parts: [Expr?] = [nil]
        var isSlice = false
        while !skipIf(op: "]") {
            if skipIf(op: ":") {
                isSlice = true
                guard parts.count < 3 else { throw unexpected(expected: "']'") }
                parts.append(nil)
            } else {
                guard parts[parts.count - 1] == nil else {
                    throw unexpected(expected: "':' or ']'")
                }
                parts[parts.count - 1] = try parseExpression()
            }
        }
        if !isSlice {
            guard let index = parts[0] else { throw unexpected(expected: "an index") }
            return Expr(kind: .item(base, index), location: location)
        }
        while parts.count < 3 { parts.append(nil) }
        return Expr(
            kind: .slice(base, start: parts[0], stop: parts[1], step: parts[2]), location: location)
    }

    /// `(a, b, key=value)`.
    mutating func parseCallArguments() throws(TemplateError) -> Arguments {
        try expect(op: "(")
        var arguments = Arguments()
        var first = true
        while !skipIf(op: ")") {
            if !first {
                try expect(op: ",")
                if skipIf(op: ")") { break }
            }
            first = false
            if isOp("*") || isOp("**") {
                throw .unsupported(
                    construct: "'*args' / '**kwargs' in calls", location: current.location)
            }
            if case .name(let name) = current.kind, next.kind == .op("=") {
                _ = advance()
                _ = advance()
                arguments.keyword.append((name, try parseExpression()))
            } else {
                guard arguments.keyword.isEmpty else {
                    throw .syntax(
                        message: "positional argument follows keyword argument",
                        location: current.location)
                }
                arguments.positional.append(try parseExpression())
            }
        }
        return arguments
    }

    private mutating func parseFilterExpression(_ base: Expr) throws(TemplateError) -> Expr {
        var expr = base
        while true {
            if isOp("|") {
                _ = advance()
                let filter = try parseFilterCall()
                expr = Expr(
                    kind: .filter(expr, name: filter.name, filter.arguments),
                    location: filter.location)
            } else if isName("is") {
                expr = try parseTest(expr)
            } else if isOp("(") {
                expr = Expr(kind: .call(expr, try parseCallArguments()), location: expr.location)
            } else {
                return expr
            }
        }
    }

    /// A filter name (already past `|`) and its optional arguments; checks the name exists.
    mutating func parseFilterCall() throws(TemplateError) -> FilterCall {
        let location = current.location
        var name = try expectName()
        while skipIf(op: ".") { name += "." + (try expectName()) }
        guard Filters.names.contains(name) else {
            throw .unsupported(construct: "filter '\(name)'", location: location)
        }
        let arguments = isOp("(") ? try parseCallArguments() : Arguments()
        return FilterCall(name: name, arguments: arguments, location: location)
    }

    private mutating func parseTest(_ base: Expr) throws(TemplateError) -> Expr {
        let location = advance().location
        let negated = skipIf(name: "not")
        let nameLocation = current.location
        let name = try expectName()
        guard TemplateTests.names.contains(name) else {
            throw .unsupported(construct: "test '\(name)'", location: nameLocation)
        }
        var arguments = Arguments()
        if isOp("(") {
            arguments = try parseCallArguments()
        } else if startsTestArgument() {
            if isName("is") {
                throw .syntax(
                    message: "you cannot chain multiple tests with 'is'", location: current.location
                )
            }
            arguments.positional = [try parsePostfix(try parsePrimary())]
        }
        return Expr(kind: .test(base, name: name, arguments, negated: negated), location: location)
    }

    /// jinja2 lets a test take one argument without parentheses: `x is divisibleby 3`.
    private func startsTestArgument() -> Bool {
        switch current.kind {
        case .name(let name): return !["else", "or", "and"].contains(name)
        case .string, .integer, .float, .op("["), .op("{"): return true
        default: return false
        }
    }
}

// Statement parser: turns the token stream into `Node`s, after jinja2/parser.py's `subparse`
// and `parse_<tag>` methods. Tags outside the chat-template subset (`include`, `extends`,
// `call`, …) are rejected here with their location, before anything renders.

struct Parser {
    var tokens: [Token]
    var index = 0
    private var loopDepth = 0
    /// Nesting of expressions and blocks; bounded so hostile input cannot overflow the stack.
    var depth = 0
    static let maximumDepth = 64

    /// Tags that exist in Jinja but are outside this engine's subset.
    private static let unsupportedTags: Set<String> = [
        "extends", "block", "include", "import", "from", "call", "autoescape", "do", "trans",
        "pluralize", "debug",
    ]

    static func parse(_ source: String) throws(TemplateError) -> [Node] {
        var parser = Parser(tokens: try Lexer.tokenize(source))
        let (nodes, _) = try parser.parseBody(until: [], opener: nil)
        return nodes
    }

    var current: Token { tokens[index] }
    var next: Token { tokens[min(index + 1, tokens.count - 1)] }

    mutating func advance() -> Token {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    func isName(_ name: String, _ token: Token? = nil) -> Bool {
        (token ?? current).kind == .name(name)
    }

    func isOp(_ op: String) -> Bool { current.kind == .op(op) }

    mutating func skipIf(op: String) -> Bool {
        guard isOp(op) else { return false }
        _ = advance()
        return true
    }

    mutating func skipIf(name: String) -> Bool {
        guard isName(name) else { return false }
        _ = advance()
        return true
    }

    mutating func expect(op: String) throws(TemplateError) {
        guard skipIf(op: op) else { throw unexpected(expected: "'\(op)'") }
    }

    mutating func expectName() throws(TemplateError) -> String {
        guard case .name(let name) = current.kind else { throw unexpected(expected: "a name") }
        _ = advance()
        return name
    }

    mutating func expectBlockEnd() throws(TemplateError) {
        guard current.kind == .blockEnd else { throw unexpected(expected: "end of statement '%}'") }
        _ = advance()
    }

    func unexpected(expected: String) -> TemplateError {
        .syntax(
            message: "expected \(expected), found \(describe(current.kind))",
            location: current.location)
    }

    func describe(_ kind: TokenKind) -> String {
        switch kind {
        case .text(let text): "text '\(text.prefix(20))'"
        case .variableBegin: "'{{'"
        case .variableEnd: "'}}'"
        case .blockBegin: "'{%'"
        case .blockEnd: "'%}'"
        case .name(let name): "'\(name)'"
        case .string(let value): "string '\(value.prefix(20))'"
        case .integer(let value): "integer \(value)"
        case .float(let value): "number \(value)"
        case .op(let op): "'\(op)'"
        case .eof: "end of template"
        }
    }

    /// Parses nodes until a block tag named in `endTags`; returns the nodes and that tag's name,
    /// leaving the stream on the tag name. `opener` names the enclosing tag for error messages.
    mutating func parseBody(
        until endTags: Set<String>, opener: (tag: String, location: TemplateLocation)?
    ) throws(TemplateError) -> ([Node], String) {
        var nodes: [Node] = []
        while true {
            let token = current
            switch token.kind {
            case .text(let text):
                _ = advance()
                nodes.append(Node(kind: .text(text), location: token.location))
            case .variableBegin:
                _ = advance()
                let expr = try parseTuple()
                guard current.kind == .variableEnd else { throw unexpected(expected: "'}}'") }
                _ = advance()
                nodes.append(Node(kind: .output(expr), location: token.location))
            case .blockBegin:
                if case .name(let tag) = next.kind, endTags.contains(tag) {
                    _ = advance()
                    return (nodes, tag)
                }
                _ = advance()
                nodes.append(try parseStatement())
            case .eof:
                if let opener {
                    let expected = endTags.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    throw .syntax(
                        message:
                            "unexpected end of template: the '\(opener.tag)' tag at "
                            + "\(opener.location) needs \(expected)",
                        location: token.location)
                }
                return (nodes, "")
            default:
                throw unexpected(expected: "text or a tag")
            }
        }
    }

    /// Runs `body` one nesting level deeper, failing past `maximumDepth`.
    mutating func nested<T>(_ body: (inout Parser) throws(TemplateError) -> T) throws(TemplateError)
        -> T
    {
        guard depth < Self.maximumDepth else {
            throw .unsupported(
                construct: "nesting deeper than \(Self.maximumDepth) levels",
                location: current.location)
        }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }

    private mutating func parseStatement() throws(TemplateError) -> Node {
        try nested { (parser: inout Parser) throws(TemplateError) in
            try parser.parseStatementUnnested()
        }
    }

    private mutating func parseStatementUnnested() throws(TemplateError) -> Node {
        let token = current
        guard case .name(let tag) = token.kind else { throw unexpected(expected: "a tag name") }
        if Self.unsupportedTags.contains(tag) {
            throw .unsupported(construct: "the '{% \(tag) %}' tag", location: token.location)
        }
        _ = advance()
        let kind: Node.Kind
        switch tag {
        case "if": kind = try parseIf(location: token.location)
        case "for": kind = try parseFor(location: token.location)
        case "set": kind = try parseSet(location: token.location)
        case "macro": kind = try parseMacro(location: token.location)
        case "with": kind = try parseWith(location: token.location)
        case "filter":
            let filters = try parseFilterChain(requireFirstBar: false)
            try expectBlockEnd()
            kind = .filterBlock(
                filters: filters, body: try parseBlockBody("filter", token.location))
        case "generation":
            try expectBlockEnd()
            kind = .generation(try parseBlockBody("generation", token.location))
        case "break", "continue":
            guard loopDepth > 0 else {
                throw .syntax(message: "'\(tag)' outside of a loop", location: token.location)
            }
            try expectBlockEnd()
            kind = tag == "break" ? .breakLoop : .continueLoop
        default:
            if tag.hasPrefix("end") || tag == "elif" || tag == "else" {
                throw .syntax(
                    message: "unexpected '\(tag)' with no open block to close",
                    location: token.location)
            }
            throw .unsupported(construct: "unknown tag '\(tag)'", location: token.location)
        }
        return Node(kind: kind, location: token.location)
    }

    /// Body up to `{% end<tag> %}`, consuming the end tag.
    private mutating func parseBlockBody(_ tag: String, _ location: TemplateLocation)
        throws(TemplateError) -> [Node]
    {
        let (body, _) = try parseBody(until: ["end" + tag], opener: (tag, location))
        _ = advance()
        try expectBlockEnd()
        return body
    }

    private mutating func parseIf(location: TemplateLocation) throws(TemplateError) -> Node.Kind {
        var branches: [(condition: Expr, body: [Node])] = []
        var condition = try parseTuple(withCondexpr: false)
        while true {
            try expectBlockEnd()
            let (body, end) = try parseBody(
                until: ["elif", "else", "endif"], opener: ("if", location))
            branches.append((condition, body))
            _ = advance()
            switch end {
            case "elif":
                condition = try parseTuple(withCondexpr: false)
            case "else":
                try expectBlockEnd()
                let (elseBody, _) = try parseBody(until: ["endif"], opener: ("if", location))
                _ = advance()
                try expectBlockEnd()
                return .ifChain(branches: branches, elseBody: elseBody)
            default:
                try expectBlockEnd()
                return .ifChain(branches: branches, elseBody: [])
            }
        }
    }

    private mutating func parseFor(location: TemplateLocation) throws(TemplateError) -> Node.Kind {
        let target = try parseAssignTarget(allowAttribute: false)
        guard skipIf(name: "in") else { throw unexpected(expected: "'in'") }
        let iterable = try parseTuple(withCondexpr: false, extraEndNames: ["recursive"])
        var filter: Expr?
        if skipIf(name: "if") { filter = try parseExpression() }
        if isName("recursive") {
            throw .unsupported(construct: "recursive for loops", location: current.location)
        }
        try expectBlockEnd()
        loopDepth += 1
        let (body, end) = try parseBody(until: ["endfor", "else"], opener: ("for", location))
        loopDepth -= 1
        _ = advance()
        try expectBlockEnd()
        var elseBody: [Node] = []
        if end == "else" {
            (elseBody, _) = try parseBody(until: ["endfor"], opener: ("for", location))
            _ = advance()
            try expectBlockEnd()
        }
        return .forLoop(
            ForLoop(
                target: target, iterable: iterable, filter: filter, body: body, elseBody: elseBody))
    }

    private mutating func parseSet(location: TemplateLocation) throws(TemplateError) -> Node.Kind {
        let target = try parseAssignTarget(allowAttribute: true)
        if skipIf(op: "=") {
            let value = try parseTuple()
            try expectBlockEnd()
            return .set(target, value)
        }
        let filters = try parseFilterChain(requireFirstBar: true)
        try expectBlockEnd()
        return .setBlock(target, filters: filters, body: try parseBlockBody("set", location))
    }

    private mutating func parseWith(location: TemplateLocation) throws(TemplateError) -> Node.Kind {
        var assignments: [(AssignTarget, Expr)] = []
        while current.kind != .blockEnd {
            if !assignments.isEmpty { try expect(op: ",") }
            let target = try parseAssignTarget(allowAttribute: false)
            try expect(op: "=")
            assignments.append((target, try parseExpression()))
        }
        try expectBlockEnd()
        return .with(assignments: assignments, body: try parseBlockBody("with", location))
    }

    private mutating func parseMacro(location: TemplateLocation) throws(TemplateError) -> Node.Kind {
        let name = try expectName()
        try expect(op: "(")
        var parameters: [(name: String, defaultValue: Expr?)] = []
        while !skipIf(op: ")") {
            if !parameters.isEmpty { try expect(op: ",") }
            if skipIf(op: ")") { break }
            let parameter = try expectName()
            let defaultValue = skipIf(op: "=") ? try parseExpression() : nil
            if defaultValue == nil, parameters.last?.defaultValue != nil {
                throw .syntax(
                    message: "non-default argument follows default argument",
                    location: current.location)
            }
            parameters.append((parameter, defaultValue))
        }
        try expectBlockEnd()
        let depth = loopDepth
        loopDepth = 0
        defer { loopDepth = depth }
        let body = try parseBlockBody("macro", location)
        return .macro(Macro(name: name, parameters: parameters, body: body))
    }

    /// `name`, `a, b`, `(a, b)` or (for `set`) `ns.attr`.
    private mutating func parseAssignTarget(allowAttribute: Bool) throws(TemplateError)
        -> AssignTarget
    {
        let parenthesized = skipIf(op: "(")
        let first = try expectName()
        if allowAttribute, !parenthesized, skipIf(op: ".") {
            return .attribute(object: first, attribute: try expectName())
        }
        var names = [first]
        while skipIf(op: ",") {
            guard case .name = current.kind, !isName("in") else { break }
            names.append(try expectName())
        }
        if parenthesized { try expect(op: ")") }
        return names.count == 1 && !parenthesized ? .name(first) : .tuple(names)
    }

    /// `| name(args) | name …` for `{% filter %}` and `{% set x | f %}`.
    private mutating func parseFilterChain(requireFirstBar: Bool) throws(TemplateError)
        -> [FilterCall]
    {
        var filters: [FilterCall] = []
        if !requireFirstBar {
            filters.append(try parseFilterCall())
        }
        while skipIf(op: "|") {
            filters.append(try parseFilterCall())
        }
        return filters
    }
}

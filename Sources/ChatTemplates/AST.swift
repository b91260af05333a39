// Syntax tree for the Jinja subset: expressions (`Expr`) and statements (`Node`), shaped after
// jinja2/nodes.py. Every node keeps the location of its first token for error messages.

struct Expr: Sendable {
    indirect enum Kind: Sendable {
        case none
        case bool(Bool)
        case integer(Int)
        case float(Double)
        case string(String)
        case name(String)
        case list([Expr])
        case tuple([Expr])
        case dictionary([DictionaryEntry])
        case attribute(Expr, String)
        case item(Expr, Expr)
        case slice(Expr, start: Expr?, stop: Expr?, step: Expr?)
        case call(Expr, Arguments)
        case filter(Expr, name: String, Arguments)
        case test(Expr, name: String, Arguments, negated: Bool)
        case unary(UnaryOperator, Expr)
        case binary(BinaryOperator, Expr, Expr)
        case and(Expr, Expr)
        case or(Expr, Expr)
        case not(Expr)
        /// `a < b < c` chains like Python: each comparison against the previous operand.
        case compare(Expr, [(CompareOperator, Expr)])
        /// `a ~ b ~ c`: string concatenation.
        case concat([Expr])
        case conditional(condition: Expr, then: Expr, otherwise: Expr?)
    }

    var kind: Kind
    var location: TemplateLocation
}

struct DictionaryEntry: Sendable {
    var key: Expr
    var value: Expr
}

struct Arguments: Sendable {
    var positional: [Expr] = []
    var keyword: [(name: String, value: Expr)] = []
}

enum UnaryOperator: String, Sendable {
    case negate = "-"
    case plus = "+"
}

enum BinaryOperator: String, Sendable {
    case add = "+"
    case subtract = "-"
    case multiply = "*"
    case divide = "/"
    case floorDivide = "//"
    case modulo = "%"
    case power = "**"
}

enum CompareOperator: String, Sendable {
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case contains = "in"
    case notContains = "not in"
}

/// The left side of `{% set … %}` or a `{% for … %}` target.
enum AssignTarget: Sendable {
    case name(String)
    case tuple([String])
    /// `{% set ns.attr = … %}`: assignment to a namespace attribute.
    case attribute(object: String, attribute: String)
}

struct ForLoop: Sendable {
    var target: AssignTarget
    var iterable: Expr
    var filter: Expr?
    var body: [Node]
    var elseBody: [Node]
}

struct Macro: Sendable {
    var name: String
    var parameters: [(name: String, defaultValue: Expr?)]
    var body: [Node]
}

struct FilterCall: Sendable {
    var name: String
    var arguments: Arguments
    var location: TemplateLocation
}

struct Node: Sendable {
    indirect enum Kind: Sendable {
        case text(String)
        case output(Expr)
        case ifChain(branches: [(condition: Expr, body: [Node])], elseBody: [Node])
        case forLoop(ForLoop)
        case set(AssignTarget, Expr)
        /// `{% set x | filter %}…{% endset %}`: captures rendered output.
        case setBlock(AssignTarget, filters: [FilterCall], body: [Node])
        case macro(Macro)
        case breakLoop
        case continueLoop
        /// `{% with a = 1 %}…{% endwith %}`: a scope with its own assignments.
        case with(assignments: [(AssignTarget, Expr)], body: [Node])
        /// `{% filter upper %}…{% endfilter %}`.
        case filterBlock(filters: [FilterCall], body: [Node])
        /// HF's `{% generation %}…{% endgeneration %}`: marks assistant output for loss masks.
        case generation([Node])
    }

    var kind: Kind
    var location: TemplateLocation
}

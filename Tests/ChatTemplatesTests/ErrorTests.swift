// Errors: invalid syntax, constructs outside the subset, failures during evaluation and
// `raise_exception`, each reported with the template location and never as a crash.

import ChatTemplates
import Testing

/// Parses and renders `source`, returning the error it throws (nil if it succeeded).
func templateError(
    _ source: String, context: [String: JinjaValue] = [:]
) -> TemplateError? {
    do {
        _ = try ChatTemplate(source: source).render(context: context)
        return nil
    } catch {
        return error
    }
}

@Suite("Template errors")
struct ErrorTests {
    struct ErrorCase: CustomTestStringConvertible, Sendable {
        var source: String
        var kind: String
        var message: String
        var line: Int
        var column: Int
        var testDescription: String { source }
    }

    static let unsupported: [ErrorCase] = [
        ErrorCase(
            source: "a\n  {% include 'other.jinja' %}", kind: "unsupported",
            message: "the '{% include %}' tag", line: 2, column: 6),
        ErrorCase(
            source: "{% extends 'base' %}", kind: "unsupported", message: "the '{% extends %}' tag",
            line: 1, column: 4),
        ErrorCase(
            source: "{% call m() %}x{% endcall %}", kind: "unsupported",
            message: "the '{% call %}' tag", line: 1, column: 4),
        ErrorCase(
            source: "{% frobnicate %}", kind: "unsupported", message: "unknown tag 'frobnicate'",
            line: 1, column: 4),
        ErrorCase(
            source: "{{ x | urlize }}", kind: "unsupported", message: "filter 'urlize'", line: 1,
            column: 8),
        ErrorCase(
            source: "{{ x\n | groupby('a') }}", kind: "unsupported", message: "filter 'groupby'",
            line: 2, column: 4),
        ErrorCase(
            source: "{% if x is frobbable %}{% endif %}", kind: "unsupported",
            message: "test 'frobbable'", line: 1, column: 12),
        ErrorCase(
            source: "{% for x in y recursive %}{% endfor %}", kind: "unsupported",
            message: "recursive for loops", line: 1, column: 15),
        ErrorCase(
            source: "{{ f(*args) }}", kind: "unsupported", message: "'*args' / '**kwargs' in calls",
            line: 1, column: 6),
    ]

    static let syntax: [ErrorCase] = [
        ErrorCase(
            source: "{% if x %}no end", kind: "syntax",
            message:
                "unexpected end of template: the 'if' tag at line 1, column 4 needs "
                + "'elif' or 'else' or 'endif'",
            line: 1, column: 17),
        ErrorCase(
            source: "{% for x in y %}{% endif %}", kind: "syntax",
            message: "unexpected 'endif' with no open block to close", line: 1, column: 20),
        ErrorCase(
            source: "{% endfor %}", kind: "syntax",
            message: "unexpected 'endfor' with no open block to close", line: 1, column: 4),
        ErrorCase(
            source: "{{ 'unterminated }}", kind: "syntax", message: "unterminated string literal",
            line: 1, column: 4),
        ErrorCase(
            source: "{{ x ", kind: "syntax", message: "missing '}}' to close this tag", line: 1,
            column: 1),
        ErrorCase(
            source: "ok {# never closed", kind: "syntax",
            message: "missing end of comment tag '#}'", line: 1, column: 4),
        ErrorCase(
            source: "{{ (1 + 2 }}", kind: "syntax", message: "unexpected '}', expected ')'",
            line: 1, column: 11),
        ErrorCase(source: "{{ (1 + 2", kind: "syntax", message: "unclosed '('", line: 1, column: 4),
        ErrorCase(
            source: "{{ [1, 2) }}", kind: "syntax", message: "unexpected ')', expected ']'",
            line: 1, column: 9),
        ErrorCase(
            source: "{{ 1 + }}", kind: "syntax", message: "expected an expression, found '}}'",
            line: 1, column: 8),
        ErrorCase(
            source: "{% break %}", kind: "syntax", message: "'break' outside of a loop", line: 1,
            column: 4),
        ErrorCase(
            source: "{% set x = 1 2 %}", kind: "syntax",
            message: "expected end of statement '%}', found integer 2", line: 1, column: 14),
        ErrorCase(
            source: "{{ x @ y }}", kind: "syntax", message: "unexpected character '@'", line: 1,
            column: 6),
        ErrorCase(
            source: "{% raw %}never closed", kind: "syntax",
            message: "missing '{% endraw %}' for this raw block", line: 1, column: 1),
        ErrorCase(
            source: "{{ f(a=1, 2) }}", kind: "syntax",
            message: "positional argument follows keyword argument", line: 1, column: 11),
    ]

    static let runtime: [ErrorCase] = [
        ErrorCase(
            source: "{{ missing.attr }}", kind: "runtime", message: "'missing' is undefined",
            line: 1, column: 11),
        ErrorCase(
            source: "{{ 1 + missing }}", kind: "runtime", message: "'missing' is undefined",
            line: 1, column: 6),
        ErrorCase(
            source: "{{ 'a' + 1 }}", kind: "runtime",
            message: "can only concatenate str (not \"int\") to str", line: 1, column: 8),
        ErrorCase(
            source: "{{ 1 / 0 }}", kind: "runtime", message: "division by zero", line: 1, column: 6),
        ErrorCase(
            source: "{{ 1 < 'a' }}", kind: "runtime",
            message: "'<' not supported between instances of 'int' and 'str'", line: 1, column: 4),
        ErrorCase(
            source: "{{ undefined_function() }}", kind: "runtime",
            message: "'undefined_function' is undefined", line: 1, column: 4),
        ErrorCase(
            source: "{{ 'abc'() }}", kind: "runtime", message: "'str' object is not callable",
            line: 1, column: 4),
        ErrorCase(
            source: "{% for x in 3 %}{% endfor %}", kind: "runtime",
            message: "'int' object is not iterable", line: 1, column: 13),
        ErrorCase(
            source: "{% set x = 1 %}{% set x.attr = 2 %}", kind: "runtime",
            message:
                "cannot assign attribute 'attr' on 'x': only namespace() objects accept "
                + "attribute assignment",
            line: 1, column: 19),
        ErrorCase(
            source: "{% for a, b in [[1, 2, 3]] %}{% endfor %}", kind: "runtime",
            message: "cannot unpack 3 value(s) into 2 name(s)", line: 1, column: 4),
        ErrorCase(
            source: "{{ {'a': 1} | tojson }}{{ missing | tojson }}", kind: "runtime",
            message: "Object of type Undefined is not JSON serializable", line: 1, column: 37),
        ErrorCase(
            source: "{{ 'x' | trim(1) }}", kind: "runtime",
            message: "chars must be a string, not int", line: 1, column: 10),
        ErrorCase(
            source: "{{ 'ab'.split('') }}", kind: "runtime", message: "empty separator", line: 1,
            column: 8),
        ErrorCase(
            source: "{{ 'x' * 100000000 }}", kind: "runtime",
            message: "repetition result would exceed 16777216 elements", line: 1, column: 8),
        ErrorCase(
            source: "{{ range(10000000) }}", kind: "runtime",
            message: "range too big, the sandbox allows 100000 items", line: 1, column: 4),
        ErrorCase(
            source: "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", kind: "runtime",
            message: "macro 'f' recursed deeper than 32 calls", line: 1, column: 20),
        ErrorCase(
            source: "{{ 9223372036854775807 + 1 }}", kind: "runtime",
            message: "integer overflow in '+'", line: 1, column: 24),
        // Work bounds: a runaway loop, a string or list doubled in a loop, an output that keeps growing.
        ErrorCase(
            source: "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            kind: "runtime", message: "the template ran more than 1000000 steps (a runaway loop?)", line: 1,
            column: 32),
        ErrorCase(
            source: "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
            kind: "runtime", message: "a string would exceed 64 MiB", line: 1, column: 76),
        ErrorCase(
            source: "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
            kind: "runtime", message: "a list would exceed 16777216 items", line: 1, column: 75),
        ErrorCase(  // found by the template fuzzer: printing a namespace that held itself overflowed the stack
            source: "{% set ns = namespace(n=0) %}{% set ns.n = ns %}{{ ns }}", kind: "runtime",
            message: "cannot assign 'ns.n': a namespace cannot hold itself", line: 1, column: 33),
        ErrorCase(
            source: "{% set ns = namespace(l=[]) %}{% for i in range(100) %}{% set ns.l = [ns.l] %}{% endfor %}",
            kind: "runtime", message: "cannot assign 'ns.l': values nested deeper than 64 levels", line: 1,
            column: 59),
        ErrorCase(
            source: "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", kind: "runtime",
            message: "the rendered text would exceed 64 MiB", line: 1, column: 29),
    ]

    @Test(arguments: unsupported + syntax + runtime)
    func reportsKindMessageAndLocation(_ errorCase: ErrorCase) throws {
        let error = try #require(templateError(errorCase.source))
        let kind: String
        switch error {
        case .syntax: kind = "syntax"
        case .unsupported: kind = "unsupported"
        case .runtime: kind = "runtime"
        case .raisedException: kind = "raisedException"
        case .invalidArguments: kind = "invalidArguments"
        }
        #expect(kind == errorCase.kind)
        #expect(error.message == errorCase.message)
        #expect(error.location == TemplateLocation(line: errorCase.line, column: errorCase.column))
    }

    @Test func raiseExceptionCarriesTheTemplateMessage() throws {
        let source = """
            {%- for message in messages %}
                {%- if message.role not in ['user', 'assistant'] %}
                    {{- raise_exception('Conversation roles must be user or assistant, got ' + message.role) }}
                {%- endif %}
            {%- endfor %}
            """
        let template = try ChatTemplate(source: source)
        #expect(
            throws: TemplateError.raisedException(
                message: "Conversation roles must be user or assistant, got tool",
                location: TemplateLocation(line: 3, column: 13))
        ) {
            _ = try template.render(
                messages: [ChatMessage(role: "tool", content: "{}")], addGenerationPrompt: false,
                bosToken: nil, eosToken: nil)
        }
    }

    @Test func descriptionsNameTheLocationAndConstruct() {
        let unsupported = TemplateError.unsupported(
            construct: "filter 'urlize'", location: TemplateLocation(line: 3, column: 7))
        #expect(
            unsupported.description.hasPrefix(
                "Unsupported template construct at line 3, column 7: filter 'urlize'."))
        let raised = TemplateError.raisedException(
            message: "Roles must alternate", location: TemplateLocation(line: 1, column: 2))
        #expect(
            raised.description
                == "Roles must alternate (raised by the chat template at line 1, column 2)")
    }

    @Test func exclusiveRenderOptions() throws {
        let template = try ChatTemplate(source: "{{ messages | length }}")
        #expect {
            _ = try template.render(
                messages: [], addGenerationPrompt: true, bosToken: nil, eosToken: nil,
                continueFinalMessage: true)
        } throws: { error in
            if case .invalidArguments = error as? TemplateError { return true }
            return false
        }
    }

    /// Deep nesting fails cleanly instead of overflowing the stack.
    @Test(arguments: [
        String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500),
        String(repeating: "[", count: 500) + String(repeating: "]", count: 500),
        String(repeating: "not ", count: 500) + "x",
        String(repeating: "-", count: 500) + "1",
    ])
    func deepExpressionNesting(_ expression: String) {
        let error = templateError("{{ " + expression + " }}")
        #expect(error?.message == "nesting deeper than 64 levels")
    }

    @Test func deepBlockNesting() {
        let source =
            String(repeating: "{% if true %}", count: 300)
            + String(repeating: "{% endif %}", count: 300)
        #expect(templateError(source)?.message == "nesting deeper than 64 levels")
    }

    /// Every prefix of a real template either parses and renders or throws a TemplateError.
    @Test(arguments: [ModelTemplates.llama31, ModelTemplates.qwen25])
    func truncatedTemplatesNeverCrash(_ source: String) {
        let scalars = Array(source.unicodeScalars)
        for length in stride(from: 0, to: scalars.count, by: 7) {
            let prefix = String(String.UnicodeScalarView(scalars[..<length]))
            _ = templateError(prefix, context: ["messages": [["role": "user", "content": "hi"]]])
        }
    }
}

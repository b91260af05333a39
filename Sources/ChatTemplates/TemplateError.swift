// Errors thrown while parsing or rendering a chat template. Every case carries the line and
// column in the template source, so a failing Hub template can be fixed at the right spot.

/// A position in a template's source: 1-based line and column (columns count Unicode
/// scalars, so a tab or an emoji is one column).
public struct TemplateLocation: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "line \(line), column \(column)" }
}

/// Why a chat template could not be parsed or rendered.
public enum TemplateError: Error, Equatable, CustomStringConvertible {
    /// The template is not valid Jinja (unclosed tag, unexpected token, …).
    case syntax(message: String, location: TemplateLocation)
    /// Valid Jinja that this engine does not implement (`{% include %}`, an unknown filter, …).
    case unsupported(construct: String, location: TemplateLocation)
    /// Evaluation failed: a type error, an undefined variable used as a value, a bad argument.
    case runtime(message: String, location: TemplateLocation)
    /// The template called `raise_exception(message)`, e.g. to reject a role order.
    case raisedException(message: String, location: TemplateLocation)
    /// The render arguments are inconsistent (not a template problem).
    case invalidArguments(message: String)

    public var description: String {
        switch self {
        case .syntax(let message, let location):
            "Template syntax error at \(location): \(message)"
        case .unsupported(let construct, let location):
            "Unsupported template construct at \(location): \(construct). "
                + "Hint: ChatTemplates implements the Jinja subset used by Hub chat templates; "
                + "simplify the template or extend the engine."
        case .runtime(let message, let location):
            "Template error at \(location): \(message)"
        case .raisedException(let message, let location):
            "\(message) (raised by the chat template at \(location))"
        case .invalidArguments(let message):
            message
        }
    }

    /// The bare message, without location or hints (for `raise_exception`, the template's text).
    public var message: String {
        switch self {
        case .syntax(let message, _), .runtime(let message, _),
            .raisedException(let message, _), .invalidArguments(let message):
            message
        case .unsupported(let construct, _):
            construct
        }
    }

    /// Where in the template the error arose, when it came from the template.
    public var location: TemplateLocation? {
        switch self {
        case .syntax(_, let location), .unsupported(_, let location),
            .runtime(_, let location), .raisedException(_, let location):
            location
        case .invalidArguments:
            nil
        }
    }
}

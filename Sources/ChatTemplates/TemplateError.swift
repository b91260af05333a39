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
        case let .syntax(message, location):
            "Template syntax error at \(location): \(message)"
        case let .unsupported(construct, location):
            "Unsupported template construct at \(location): \(construct). "
                + "Hint: ChatTemplates implements the Jinja subset used by Hub chat templates; "
                + "simplify the template or extend the engine."
        case let .runtime(message, location):
            "Template error at \(location): \(message)"
        case let .raisedException(message, location):
            "\(message) (raised by the chat template at \(location))"
        case let .invalidArguments(message):
            message
        }
    }

    /// The bare message, without location or hints (for `raise_exception`, the template's text).
    public var message: String {
        switch self {
        case let .syntax(message, _), let .runtime(message, _),
            let .raisedException(message, _), let .invalidArguments(message):
            message
        case let .unsupported(construct, _):
            construct
        }
    }

    /// Where in the template the error arose, when it came from the template.
    public var location: TemplateLocation? {
        switch self {
        case let .syntax(_, location), let .unsupported(_, location),
            let .runtime(_, location), let .raisedException(_, location):
            location
        case .invalidArguments:
            nil
        }
    }
}

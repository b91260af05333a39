// Errors a user can cause when pointing RLHFKit at a model: each names the file and what was expected.

public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case invalidConfig(file: String, field: String, value: String, expected: String)
    case unsupportedArchitecture(file: String, found: String, supported: [String])
    case missingTensor(file: String, name: String)
    case shapeMismatch(file: String, name: String, expected: [Int], found: [Int])
    case unknownModel(name: String, hint: String)
    /// More positions than the model has (RoPE has no angles past `limit`).
    case contextOverflow(what: String, tokens: Int, limit: Int, hint: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): "\(file): cannot read (\(reason))."
        case let .invalidConfig(file, field, value, expected):
            "\(file): field '\(field)' is \(value), expected \(expected)."
        case let .unsupportedArchitecture(file, found, supported):
            "\(file): architecture '\(found)' is not supported; supported: \(supported.joined(separator: ", "))."
        case let .missingTensor(file, name): "\(file): tensor '\(name)' is missing."
        case let .shapeMismatch(file, name, expected, found):
            "\(file): tensor '\(name)' has shape \(found) but the model expects \(expected)."
        case let .unknownModel(name, hint): "unknown model '\(name)'. \(hint)"
        case let .contextOverflow(what, tokens, limit, hint):
            "\(what) needs \(tokens) positions but the model's context is \(limit). \(hint)"
        }
    }
}

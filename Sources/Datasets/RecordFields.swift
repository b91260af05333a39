// Field-by-field validation of one JSON object, producing `RecordError`s with the path of the
// offending field (`prompt[0].role`) and what was expected versus found.

/// Typed access to the fields of one record object.
struct RecordFields {
    let object: JSONObject
    let options: ReadOptions
    /// The accepted record shapes, for "missing field" messages.
    let shapes: String
    /// Every key some shape of this record kind uses.
    let knownKeys: [String]

    /// A missing-field error that also lists the keys no shape uses (likely misspellings).
    func missing(_ field: String) -> RecordError {
        RecordError(
            field: field,
            problem: .missingField(
                shapes: shapes, unknownKeys: object.keys.filter { !knownKeys.contains($0) }))
    }

    func require(_ fields: String...) throws(RecordError) {
        for field in fields where object[field] == nil { throw missing(field) }
    }

    /// Rejects keys outside `allowed` unless `ReadOptions.allowsUnknownKeys`.
    func checkKeys(_ allowed: [String]) throws(RecordError) {
        guard !options.allowsUnknownKeys else { return }
        let unknown = object.keys.filter { !allowed.contains($0) }
        if !unknown.isEmpty {
            throw RecordError(field: nil, problem: .unknownKeys(unknown, allowed: allowed))
        }
    }

    /// The field's value if it is a string or a list; the format depends on which.
    func stringOrMessages(_ field: String) throws(RecordError) -> JSONValue {
        let value = object[field]!
        switch value {
        case .string, .array: return value
        default:
            throw RecordError(
                field: field,
                problem: .wrongType(
                    expected: "a string or a list of messages", found: value.typeName))
        }
    }

    /// A non-empty string. `like` names the field whose type this one must match.
    func string(_ field: String, like other: String? = nil) throws(RecordError) -> String {
        guard case .string(let text) = object[field]! else {
            let expected = other.map { "a string, like `\($0)`" } ?? "a string"
            throw RecordError(
                field: field,
                problem: .wrongType(expected: expected, found: object[field]!.typeName))
        }
        try Self.requireText(text, field: field)
        return text
    }

    /// A non-empty list of valid messages.
    func messages(_ field: String, like other: String? = nil) throws(RecordError) -> [Message] {
        try Self.messages(object[field]!, field: field, like: other, options: options)
    }

    /// The last message of a completion must be the assistant's.
    func requireAssistant(in messages: [Message], field: String) throws(RecordError) {
        guard let last = messages.last, last.role == .assistant else {
            throw RecordError(
                field: "\(field)[\(messages.count - 1)].role",
                problem: .invalidValue(
                    expected: "\"assistant\" (a completion ends with the assistant's reply)",
                    found: "\"\(messages.last?.role.rawValue ?? "")\""))
        }
    }

    static func requireText(_ text: String, field: String) throws(RecordError) {
        if text.allSatisfy(\.isWhitespace) {
            throw RecordError(
                field: field,
                problem: .invalidValue(
                    expected: "non-empty text",
                    found: text.isEmpty ? "\"\" (empty)" : "only whitespace"))
        }
    }

    static func messages(
        _ value: JSONValue, field: String, like other: String?, options: ReadOptions
    ) throws(RecordError) -> [Message] {
        guard case .array(let items) = value else {
            let expected = other.map { "a list of messages, like `\($0)`" } ?? "a list of messages"
            throw RecordError(
                field: field, problem: .wrongType(expected: expected, found: value.typeName))
        }
        guard !items.isEmpty else {
            throw RecordError(
                field: field,
                problem: .invalidValue(
                    expected: "a non-empty list of messages", found: "[] (an empty list)"))
        }
        var messages: [Message] = []
        messages.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            messages.append(try message(item, field: "\(field)[\(index)]", options: options))
        }
        return messages
    }

    static func message(_ value: JSONValue, field: String, options: ReadOptions)
        throws(RecordError) -> Message
    {
        guard case .object(let object) = value else {
            throw RecordError(
                field: field,
                problem: .wrongType(
                    expected: "a message object {\"role\": …, \"content\": …}",
                    found: value.typeName))
        }
        for key in ["role", "content"] where object[key] == nil {
            throw RecordError(
                field: "\(field).\(key)",
                problem: .missingField(
                    shapes: "a message {\"role\": …, \"content\": …}",
                    unknownKeys: object.keys.filter { $0 != "role" && $0 != "content" }))
        }
        if !options.allowsUnknownKeys {
            let unknown = object.keys.filter { $0 != "role" && $0 != "content" }
            if !unknown.isEmpty {
                throw RecordError(
                    field: field, problem: .unknownKeys(unknown, allowed: ["role", "content"]))
            }
        }
        guard case .string(let roleName) = object["role"]! else {
            throw RecordError(
                field: "\(field).role",
                problem: .wrongType(expected: "string", found: object["role"]!.typeName))
        }
        guard let role = Message.Role(rawValue: roleName) else {
            throw RecordError(
                field: "\(field).role",
                problem: .invalidValue(
                    expected: "\"system\", \"user\" or \"assistant\"",
                    found: JSONValue.string(roleName).preview))
        }
        guard case .string(let content) = object["content"]! else {
            throw RecordError(
                field: "\(field).content",
                problem: .wrongType(expected: "string", found: object["content"]!.typeName))
        }
        try requireText(content, field: "\(field).content")
        return Message(role: role, content: content)
    }
}

// Record types in the dataset formats of TRL (https://huggingface.co/docs/trl/dataset_formats):
// language modeling (`messages`), prompt-completion, preference with explicit or implicit prompt,
// and prompt-only, each "standard" (plain strings) or "conversational" (message lists).

import ChatTemplates

/// One chat turn of a dataset record.
public struct Message: Sendable, Hashable, Codable {
    /// The roles a dataset message may have.
    public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
        case system, user, assistant
    }

    public var role: Role
    public var content: String

    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }

    /// The message as the chat template takes it.
    public var chatMessage: ChatMessage { ChatMessage(role: role.rawValue, content: content) }
}

/// A record format; one file uses exactly one.
public enum DatasetFormat: String, Sendable, Codable, CaseIterable {
    /// `{"messages": [...]}` (TRL conversational language modeling).
    case conversationalLanguageModeling
    /// `{"prompt": "...", "completion": "..."}`.
    case standardPromptCompletion
    /// `{"prompt": [messages], "completion": [messages]}`.
    case conversationalPromptCompletion
    /// `{"prompt": "...", "chosen": "...", "rejected": "..."}`.
    case standardPreference
    /// `{"prompt": [messages], "chosen": [messages], "rejected": [messages]}`.
    case conversationalPreference
    /// `{"chosen": [conversation], "rejected": [conversation]}`: the shared leading messages
    /// are the prompt.
    case conversationalImplicitPromptPreference
    /// `{"prompt": "..."}`.
    case standardPromptOnly
    /// `{"prompt": [messages]}`.
    case conversationalPromptOnly

    /// A readable name with the record shape, for messages.
    public var name: String {
        switch self {
        case .conversationalLanguageModeling:
            "conversational language-modeling ({\"messages\": [messages]})"
        case .standardPromptCompletion:
            "standard prompt-completion ({\"prompt\": string, \"completion\": string})"
        case .conversationalPromptCompletion:
            "conversational prompt-completion ({\"prompt\": [messages], "
                + "\"completion\": [messages]})"
        case .standardPreference:
            "standard preference ({\"prompt\": string, \"chosen\": string, \"rejected\": string})"
        case .conversationalPreference:
            "conversational preference ({\"prompt\": [messages], \"chosen\": [messages], "
                + "\"rejected\": [messages]})"
        case .conversationalImplicitPromptPreference:
            "implicit-prompt preference ({\"chosen\": [conversation], "
                + "\"rejected\": [conversation]})"
        case .standardPromptOnly: "standard prompt-only ({\"prompt\": string})"
        case .conversationalPromptOnly: "conversational prompt-only ({\"prompt\": [messages]})"
        }
    }

    /// Whether records hold message lists (rendered with a chat template) rather than text.
    public var isConversational: Bool {
        switch self {
        case .standardPromptCompletion, .standardPreference, .standardPromptOnly: false
        default: true
        }
    }
}

/// A record type that `Dataset` can read.
public protocol DatasetRecord: Sendable {
    /// What the records are for, in messages ("SFT", "preference", "prompt").
    static var recordKind: String { get }
    /// The format an object claims from its keys and the type of `prompt`, before validation;
    /// nil when it fits none (validation then reports why).
    static func format(of object: JSONObject) -> DatasetFormat?
    /// Validates and converts one object.
    static func decode(_ object: JSONObject, options: ReadOptions) throws(RecordError) -> Self
}

/// A supervised fine-tuning example.
public enum SFTExample: Sendable, Equatable {
    /// `{"messages": [...]}`: a whole conversation; by default the loss covers assistant turns.
    case conversation([Message])
    /// `{"prompt": "...", "completion": "..."}`: the loss covers the completion (and EOS).
    case text(prompt: String, completion: String)
    /// `{"prompt": [...], "completion": [...]}`: the loss covers what follows the prompt.
    case conversationalPromptCompletion(prompt: [Message], completion: [Message])
}

/// A preference pair for reward modelling and DPO. Implicit-prompt records are stored with
/// their shared prefix split off as the prompt.
public enum PreferenceExample: Sendable, Equatable {
    case text(prompt: String, chosen: String, rejected: String)
    case conversation(prompt: [Message], chosen: [Message], rejected: [Message])
}

/// A prompt for RL rollouts.
public enum PromptExample: Sendable, Equatable {
    case text(String)
    case conversation([Message])
}

extension SFTExample: DatasetRecord {
    public static var recordKind: String { "SFT" }

    static let shapes =
        "an SFT record {\"messages\": [messages]} or {\"prompt\": …, \"completion\": …}"

    public static func format(of object: JSONObject) -> DatasetFormat? {
        if object["messages"] != nil { return .conversationalLanguageModeling }
        switch object["prompt"] ?? object["completion"] {
        case .string: return .standardPromptCompletion
        case .array: return .conversationalPromptCompletion
        default: return nil
        }
    }

    public static func decode(_ object: JSONObject, options: ReadOptions) throws(RecordError)
        -> SFTExample
    {
        let record = RecordFields(
            object: object, options: options, shapes: shapes,
            knownKeys: ["messages", "prompt", "completion"])
        if object["messages"] != nil {
            try record.checkKeys(["messages"])
            let messages = try record.messages("messages")
            guard messages.contains(where: { $0.role == .assistant }) else {
                throw RecordError(
                    field: "messages",
                    problem: .invalidValue(
                        expected: "at least one assistant message to train on",
                        found: "roles "
                            + messages.map { "\"\($0.role.rawValue)\"" }
                            .joined(separator: ", ")))
            }
            return .conversation(messages)
        }
        guard object["prompt"] != nil || object["completion"] != nil else {
            throw record.missing("messages")
        }
        try record.require("prompt", "completion")
        try record.checkKeys(["prompt", "completion"])
        if case .string = try record.stringOrMessages("prompt") {
            return .text(
                prompt: try record.string("prompt"),
                completion: try record.string("completion", like: "prompt"))
        }
        let completion = try record.messages("completion", like: "prompt")
        try record.requireAssistant(in: completion, field: "completion")
        return .conversationalPromptCompletion(
            prompt: try record.messages("prompt"), completion: completion)
    }
}

extension PreferenceExample: DatasetRecord {
    public static var recordKind: String { "preference" }

    static let shapes =
        "a preference record {\"prompt\": …, \"chosen\": …, \"rejected\": …} or "
        + "{\"chosen\": [conversation], \"rejected\": [conversation]}"

    public static func format(of object: JSONObject) -> DatasetFormat? {
        switch object["prompt"] {
        case .string: return .standardPreference
        case .array: return .conversationalPreference
        case nil:
            if case .array = object["chosen"] { return .conversationalImplicitPromptPreference }
            return nil
        default: return nil
        }
    }

    public static func decode(_ object: JSONObject, options: ReadOptions) throws(RecordError)
        -> PreferenceExample
    {
        let record = RecordFields(
            object: object, options: options, shapes: shapes,
            knownKeys: ["prompt", "chosen", "rejected"])
        guard object["prompt"] != nil else {
            try record.require("chosen", "rejected")
            try record.checkKeys(["chosen", "rejected"])
            return try implicitPrompt(record)
        }
        try record.require("prompt", "chosen", "rejected")
        try record.checkKeys(["prompt", "chosen", "rejected"])
        if case .string = try record.stringOrMessages("prompt") {
            return .text(
                prompt: try record.string("prompt"),
                chosen: try record.string("chosen", like: "prompt"),
                rejected: try record.string("rejected", like: "prompt"))
        }
        let prompt = try record.messages("prompt")
        let chosen = try record.messages("chosen", like: "prompt")
        let rejected = try record.messages("rejected", like: "prompt")
        try record.requireAssistant(in: chosen, field: "chosen")
        try record.requireAssistant(in: rejected, field: "rejected")
        return .conversation(prompt: prompt, chosen: chosen, rejected: rejected)
    }

    /// TRL's `extract_prompt`: the longest run of leading messages both sides share is the prompt.
    private static func implicitPrompt(_ record: RecordFields) throws(RecordError)
        -> PreferenceExample
    {
        guard case .array = record.object["chosen"] else {
            throw RecordError(
                field: "chosen",
                problem: .wrongType(
                    expected: "a list of messages (records without `prompt` must hold whole "
                        + "conversations; add a `prompt` key for plain-text pairs)",
                    found: record.object["chosen"]!.typeName))
        }
        let chosen = try record.messages("chosen")
        let rejected = try record.messages("rejected", like: "chosen")
        var shared = 0
        while shared < min(chosen.count, rejected.count) && chosen[shared] == rejected[shared] {
            shared += 1
        }
        guard shared > 0 else {
            throw RecordError(
                field: "rejected[0]",
                problem: .invalidValue(
                    expected: "the same first message as chosen[0] (the shared prompt)",
                    found: "a different message"))
        }
        for (side, messages) in [("chosen", chosen), ("rejected", rejected)] {
            guard messages.count > shared else {
                throw RecordError(
                    field: side,
                    problem: .invalidValue(
                        expected: "a reply after the \(shared) messages both sides share",
                        found: "no further message"))
            }
            guard messages[shared].role == .assistant else {
                throw RecordError(
                    field: "\(side)[\(shared)].role",
                    problem: .invalidValue(
                        expected: "\"assistant\" (the first message after the shared prompt)",
                        found: "\"\(messages[shared].role.rawValue)\""))
            }
        }
        return .conversation(
            prompt: Array(chosen[..<shared]), chosen: Array(chosen[shared...]),
            rejected: Array(rejected[shared...]))
    }
}

extension PromptExample: DatasetRecord {
    public static var recordKind: String { "prompt" }

    public static func format(of object: JSONObject) -> DatasetFormat? {
        switch object["prompt"] {
        case .string: .standardPromptOnly
        case .array: .conversationalPromptOnly
        default: nil
        }
    }

    public static func decode(_ object: JSONObject, options: ReadOptions) throws(RecordError)
        -> PromptExample
    {
        let record = RecordFields(
            object: object, options: options, shapes: "a prompt record {\"prompt\": …}",
            knownKeys: ["prompt"])
        try record.require("prompt")
        try record.checkKeys(["prompt"])
        if case .string = try record.stringOrMessages("prompt") {
            return .text(try record.string("prompt"))
        }
        return .conversation(try record.messages("prompt"))
    }
}

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
    /// `{"prompt": "...", "completions": ["...", ...], "ranking": [i, ...]}` (K-wise comparisons).
    case standardRanking
    /// `{"prompt": [messages], "completions": [[messages], ...], "ranking": [i, ...]}`.
    case conversationalRanking
    /// `{"prompt": "...", "completion": "...", "label": bool}` (unpaired preference, KTO).
    case standardUnpairedPreference
    /// `{"prompt": [messages], "completion": [messages], "label": bool}`.
    case conversationalUnpairedPreference
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
        case .standardRanking:
            "standard ranking ({\"prompt\": string, \"completions\": [string], \"ranking\": [index]})"
        case .conversationalRanking:
            "conversational ranking ({\"prompt\": [messages], \"completions\": [[messages]], "
                + "\"ranking\": [index]})"
        case .standardUnpairedPreference:
            "standard unpaired preference ({\"prompt\": string, \"completion\": string, \"label\": bool})"
        case .conversationalUnpairedPreference:
            "conversational unpaired preference ({\"prompt\": [messages], \"completion\": [messages], "
                + "\"label\": bool})"
        case .standardPromptOnly: "standard prompt-only ({\"prompt\": string})"
        case .conversationalPromptOnly: "conversational prompt-only ({\"prompt\": [messages]})"
        }
    }

    /// Whether records hold message lists (rendered with a chat template) rather than text.
    public var isConversational: Bool {
        switch self {
        case .standardPromptCompletion, .standardPreference, .standardRanking, .standardUnpairedPreference,
            .standardPromptOnly:
            false
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

/// What a reward model learns from: a preference pair (optionally with a `margin`, Llama 2's preference strength)
/// or K ≥ 2 ranked completions of one prompt (InstructGPT's K-wise comparisons).
public enum Comparison: Sendable, Equatable {
    /// A pair in any of `PreferenceExample`'s shapes; `margin` m enters the loss as −log σ(r_c − r_r − m).
    case pair(PreferenceExample, margin: Double?)
    /// `{"prompt", "completions", "ranking"}`: `ranking` lists the completions' indices from best to worst (a
    /// permutation of 0..<K).
    case ranked(RankedCompletions, ranking: [Int])
}

/// K completions of one prompt, plain text or conversations.
public enum RankedCompletions: Sendable, Equatable {
    case text(prompt: String, completions: [String])
    case conversation(prompt: [Message], completions: [[Message]])
}

/// One completion labelled desirable (`true`) or undesirable (`false`): TRL's unpaired preference format, for KTO.
public struct UnpairedExample: Sendable, Equatable {
    public var completion: SFTExample
    public var label: Bool

    public init(completion: SFTExample, label: Bool) {
        self.completion = completion
        self.label = label
    }
}

/// A prompt for RL rollouts, with the reference answer when the record has one (`answer`, or `solution` as in
/// TRL's math datasets) for exact-answer rewards.
public struct PromptExample: Sendable, Equatable {
    public enum Prompt: Sendable, Equatable {
        case text(String)
        case conversation([Message])
    }

    public var prompt: Prompt
    public var answer: String?

    public init(_ prompt: Prompt, answer: String? = nil) {
        self.prompt = prompt
        self.answer = answer
    }

    public static func text(_ text: String) -> PromptExample { PromptExample(.text(text)) }
    public static func conversation(_ messages: [Message]) -> PromptExample { PromptExample(.conversation(messages)) }
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

extension Comparison: DatasetRecord {
    public static var recordKind: String { "comparison" }

    static let shapes =
        PreferenceExample.shapes + " (each may add \"margin\": number), or a K-wise ranking "
        + "{\"prompt\": …, \"completions\": [...], \"ranking\": [best index, …, worst index]}"

    public static func format(of object: JSONObject) -> DatasetFormat? {
        guard object["completions"] != nil || object["ranking"] != nil else {
            return PreferenceExample.format(of: object)
        }
        switch object["prompt"] {
        case .string: return .standardRanking
        case .array: return .conversationalRanking
        default: return nil
        }
    }

    public static func decode(_ object: JSONObject, options: ReadOptions) throws(RecordError) -> Comparison {
        let record = RecordFields(
            object: object, options: options, shapes: shapes,
            knownKeys: ["prompt", "chosen", "rejected", "margin", "completions", "ranking"])
        guard object["completions"] != nil || object["ranking"] != nil else {
            var margin: Double?
            let pair = JSONObject(object.entries.filter { $0.key != "margin" })
            if let value = object["margin"] {
                guard case .number(let m) = value, m.isFinite else {
                    throw RecordError(
                        field: "margin",
                        problem: .wrongType(expected: "a finite number", found: value.typeName))
                }
                margin = m
            }
            return .pair(try PreferenceExample.decode(pair, options: options), margin: margin)
        }
        try record.require("prompt", "completions", "ranking")
        try record.checkKeys(["prompt", "completions", "ranking"])
        guard case .array(let items) = object["completions"]! else {
            throw RecordError(
                field: "completions",
                problem: .wrongType(expected: "a list of completions", found: object["completions"]!.typeName))
        }
        guard items.count >= 2 else {
            throw RecordError(
                field: "completions",
                problem: .invalidValue(expected: "at least 2 completions to rank", found: "\(items.count)"))
        }
        let ranking = try rankingField(record.object["ranking"]!, count: items.count)
        let completions: RankedCompletions
        if case .string = try record.stringOrMessages("prompt") {
            let prompt = try record.string("prompt")
            var texts: [String] = []
            for (i, item) in items.enumerated() {
                guard case .string(let text) = item else {
                    throw RecordError(
                        field: "completions[\(i)]",
                        problem: .wrongType(expected: "a string, like `prompt`", found: item.typeName))
                }
                try RecordFields.requireText(text, field: "completions[\(i)]")
                texts.append(text)
            }
            completions = .text(prompt: prompt, completions: texts)
        } else {
            let prompt = try record.messages("prompt")
            var replies: [[Message]] = []
            for (i, item) in items.enumerated() {
                let messages = try RecordFields.messages(
                    item, field: "completions[\(i)]", like: "prompt", options: options)
                try record.requireAssistant(in: messages, field: "completions[\(i)]")
                replies.append(messages)
            }
            completions = .conversation(prompt: prompt, completions: replies)
        }
        return .ranked(completions, ranking: ranking)
    }

    /// A permutation of 0..<count (best first).
    static func rankingField(_ value: JSONValue, count: Int) throws(RecordError) -> [Int] {
        guard case .array(let items) = value else {
            throw RecordError(
                field: "ranking", problem: .wrongType(expected: "a list of completion indices", found: value.typeName))
        }
        var ranking: [Int] = []
        for item in items {
            guard case .number(let x) = item, x == x.rounded(), x >= 0, x < Double(count) else {
                throw RecordError(
                    field: "ranking",
                    problem: .invalidValue(
                        expected: "indices of `completions` (0…\(count - 1)), best first",
                        found: item.preview))
            }
            ranking.append(Int(x))
        }
        guard ranking.count == count, Set(ranking).count == count else {
            throw RecordError(
                field: "ranking",
                problem: .invalidValue(
                    expected: "a permutation of 0…\(count - 1) (each of the \(count) completions once, best first)",
                    found: "[" + ranking.map(String.init).joined(separator: ", ") + "]"))
        }
        return ranking
    }
}

extension UnpairedExample: DatasetRecord {
    public static var recordKind: String { "unpaired preference" }

    static let shapes = "an unpaired preference record {\"prompt\": …, \"completion\": …, \"label\": true|false}"

    public static func format(of object: JSONObject) -> DatasetFormat? {
        switch object["prompt"] {
        case .string: return .standardUnpairedPreference
        case .array: return .conversationalUnpairedPreference
        default: return nil
        }
    }

    public static func decode(_ object: JSONObject, options: ReadOptions) throws(RecordError) -> UnpairedExample {
        let record = RecordFields(
            object: object, options: options, shapes: shapes, knownKeys: ["prompt", "completion", "label"])
        try record.require("prompt", "completion", "label")
        try record.checkKeys(["prompt", "completion", "label"])
        guard case .bool(let label) = object["label"]! else {
            throw RecordError(
                field: "label",
                problem: .wrongType(
                    expected: "true (desirable) or false (undesirable)", found: object["label"]!.typeName))
        }
        let pair = JSONObject(object.entries.filter { $0.key != "label" })
        return UnpairedExample(completion: try SFTExample.decode(pair, options: options), label: label)
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
        let keys = ["prompt", "answer", "solution"]
        let record = RecordFields(
            object: object, options: options, shapes: "a prompt record {\"prompt\": …} (optionally \"answer\")",
            knownKeys: keys)
        try record.require("prompt")
        try record.checkKeys(keys)
        var answer: String?
        for key in ["answer", "solution"] where answer == nil {
            switch object[key] {
            case nil: continue
            case .number(let x)?: answer = x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x)
            default: answer = try record.string(key)
            }
        }
        if case .string = try record.stringOrMessages("prompt") {
            return PromptExample(.text(try record.string("prompt")), answer: answer)
        }
        return PromptExample(.conversation(try record.messages("prompt")), answer: answer)
    }
}

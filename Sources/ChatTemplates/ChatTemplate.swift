// The public entry point: a chat template parsed once and rendered like HF transformers'
// `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=…)`, which
// runs jinja2 with trim_blocks and lstrip_blocks, HF's `tojson`, `raise_exception` and
// `strftime_now`. The render also reports which bytes of the text are assistant content, the
// mask assistant-only SFT loss needs (TRL's `assistant_only_loss`).

import Foundation

/// One chat turn. `extraFields` become further keys of the message dict the template sees
/// (`tool_calls`, `name`, …); an extra `content` entry replaces `content` (e.g. `.none`).
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    public var extraFields: [String: JinjaValue]

    public init(role: String, content: String, extraFields: [String: JinjaValue] = [:]) {
        self.role = role
        self.content = content
        self.extraFields = extraFields
    }
}

/// The text a template produced, with the byte ranges that came from assistant messages.
///
/// All ranges are UTF-8 byte offsets into `text` (`Array(text.utf8)[range]`), which map
/// directly onto a byte-level BPE tokenizer's offsets.
public struct RenderedChat: Sendable, Equatable {
    /// A byte range of `text` copied from message `messageIndex`'s `content`.
    public struct ContentSpan: Sendable, Equatable {
        public var messageIndex: Int
        public var utf8Range: Range<Int>

        public init(messageIndex: Int, utf8Range: Range<Int>) {
            self.messageIndex = messageIndex
            self.utf8Range = utf8Range
        }
    }

    public var text: String
    /// Assistant content in output order. Text the template wrapped around the content (role
    /// headers, end-of-turn tokens) is outside the spans.
    public var assistantContent: [ContentSpan]
    /// Byte ranges of `{% generation %}…{% endgeneration %}` blocks (HF's
    /// `return_assistant_tokens_mask` markers), in output order; empty when the template has none.
    public var generationSpans: [Range<Int>]

    public init(
        text: String, assistantContent: [ContentSpan] = [], generationSpans: [Range<Int>] = []
    ) {
        self.text = text
        self.assistantContent = assistantContent
        self.generationSpans = generationSpans
    }

    /// UTF-8 byte ranges of assistant content in `text`, in order.
    public var assistantSpans: [Range<Int>] { assistantContent.map(\.utf8Range) }

    /// The text of a UTF-8 byte range of `text` (ranges from this value lie on scalar
    /// boundaries).
    public func text(utf8 range: Range<Int>) -> String {
        let utf8 = text.utf8
        let start = utf8.index(utf8.startIndex, offsetBy: range.lowerBound)
        let end = utf8.index(start, offsetBy: range.count)
        return String(decoding: utf8[start..<end], as: UTF8.self)
    }
}

/// A Jinja chat template (e.g. `tokenizer_config.json`'s `chat_template`), parsed once.
///
/// ```swift
/// let template = try ChatTemplate(source: config.chatTemplate)
/// let chat = try template.render(
///     messages: [ChatMessage(role: "user", content: "Hi")],
///     addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
/// ```
///
/// See Also: HF transformers `PreTrainedTokenizerBase.apply_chat_template`;
/// jinja2's template designer documentation for the language.
public struct ChatTemplate: Sendable {
    public let source: String
    let nodes: [Node]

    /// Parses `source`; throws `TemplateError` for invalid or unsupported syntax.
    public init(source: String) throws(TemplateError) {
        self.source = source
        nodes = try Parser.parse(source)
    }

    /// Renders a conversation the way `apply_chat_template(…, tokenize=False)` does.
    ///
    /// - Parameters:
    ///   - messages: The conversation; `content` of `assistant` messages is tracked into spans.
    ///   - addGenerationPrompt: Passed as `add_generation_prompt`: end with the header that
    ///     opens an assistant turn (for generation, not for training text).
    ///   - bosToken: `bos_token`; nil leaves it undefined, as HF does for unset tokens.
    ///   - eosToken: `eos_token`; nil leaves it undefined.
    ///   - continueFinalMessage: Cut the text right after the last message's content so a
    ///     model continues it (HF's `continue_final_message`). Excludes `addGenerationPrompt`.
    ///   - extraContext: More template variables (`tools`, `date_string`, …); they override
    ///     the defaults above.
    ///   - currentDate: What `strftime_now` formats (local time zone).
    /// - Returns: The text and its assistant spans (UTF-8 byte offsets).
    /// - Complexity: Linear in the template's work; a chat renders in microseconds.
    public func render(
        messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String?, eosToken: String?,
        continueFinalMessage: Bool = false, extraContext: [String: JinjaValue] = [:],
        currentDate: Date = Date()
    ) throws(TemplateError) -> RenderedChat {
        if continueFinalMessage && addGenerationPrompt {
            throw .invalidArguments(
                message:
                    "continueFinalMessage and addGenerationPrompt are exclusive: the first "
                    + "continues the last message, the second opens a new assistant turn.")
        }
        var context: [String: Value] = [
            "messages": .array(messages.enumerated().map { Self.messageValue($1, index: $0) }),
            "tools": .none,
            "documents": .none,
            "add_generation_prompt": .bool(addGenerationPrompt),
        ]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        for (name, value) in extraContext { context[name] = Value(value) }
        let output = try run(context, currentDate: currentDate)
        var chat = Self.spans(of: output, messages: messages)
        if continueFinalMessage, let last = messages.last {
            try chat.truncate(afterFinalContent: last.content)
        }
        return chat
    }

    /// Renders with exactly the given variables (plus the globals), for non-chat uses.
    public func render(context: [String: JinjaValue], currentDate: Date = Date())
        throws(TemplateError) -> String
    {
        try run(context.mapValues(Value.init), currentDate: currentDate).text
    }

    private func run(_ context: [String: Value], currentDate: Date) throws(TemplateError)
        -> TaggedString
    {
        var scope = Globals.all(currentDate: currentDate)
        scope.merge(context) { _, new in new }
        do {
            return try Interpreter(context: scope).render(nodes)
        } catch let error as TemplateError {
            throw error
        } catch {
            throw .runtime(message: "\(error)", location: TemplateLocation(line: 1, column: 1))
        }
    }

    private static func messageValue(_ message: ChatMessage, index: Int) -> Value {
        var object = ValueObject()
        object["role"] = .string(message.role)
        object["content"] = .string(
            message.role == "assistant"
                ? TaggedString(message.content, markedAsMessage: index)
                : TaggedString(message.content))
        for key in message.extraFields.keys.sorted() {
            object[key] = Value(message.extraFields[key]!)
        }
        return .object(object)
    }

    /// Turns output marks into spans; assistant messages whose content left no mark (the
    /// template rebuilt the string) are located by searching the text, in message order.
    private static func spans(of output: TaggedString, messages: [ChatMessage]) -> RenderedChat {
        var content: [RenderedChat.ContentSpan] = []
        var generation: [Range<Int>] = []
        for mark in output.marks {
            if mark.message == Interpreter.generationMark {
                generation.append(mark.range)
            } else if let last = content.last, last.messageIndex == mark.message,
                last.utf8Range.upperBound == mark.range.lowerBound
            {
                content[content.count - 1].utf8Range =
                    last.utf8Range.lowerBound..<mark.range.upperBound
            } else {
                content.append(
                    RenderedChat.ContentSpan(messageIndex: mark.message, utf8Range: mark.range))
            }
        }
        let marked = Set(content.map(\.messageIndex))
        let bytes = Array(output.text.utf8)
        for (index, message) in messages.enumerated()
        where message.role == "assistant" && !marked.contains(index) {
            let searchStart =
                content.filter { $0.messageIndex < index }.map(\.utf8Range.upperBound).max() ?? 0
            let candidates = [message.content, TaggedString(message.content).stripped().text]
            for candidate in candidates where !candidate.isEmpty {
                if let found = bytes[searchStart...].firstRange(of: Array(candidate.utf8)) {
                    content.append(RenderedChat.ContentSpan(messageIndex: index, utf8Range: found))
                    break
                }
            }
        }
        content.sort { $0.utf8Range.lowerBound < $1.utf8Range.lowerBound }
        generation.sort { $0.lowerBound < $1.lowerBound }
        return RenderedChat(
            text: output.text, assistantContent: content, generationSpans: generation)
    }
}

extension RenderedChat {
    /// HF's `continue_final_message`: cut after the last occurrence of the final content
    /// (or of its stripped form, for templates that trim).
    mutating func truncate(afterFinalContent finalContent: String) throws(TemplateError) {
        let bytes = Array(text.utf8)
        var end: Int?
        for candidate in [finalContent, TaggedString(finalContent).stripped().text] {
            let needle = Array(candidate.utf8)
            if let range = bytes.lastRange(of: needle) {
                end = range.upperBound
                break
            }
        }
        guard let end else {
            throw .invalidArguments(
                message:
                    "continueFinalMessage: the final message's content does not appear in the "
                    + "rendered text")
        }
        text = String(decoding: bytes[..<end], as: UTF8.self)
        assistantContent = assistantContent.compactMap { span in
            let clipped = span.utf8Range.clamped(to: 0..<end)
            return clipped.isEmpty
                ? nil : ContentSpan(messageIndex: span.messageIndex, utf8Range: clipped)
        }
        generationSpans = generationSpans.map { $0.clamped(to: 0..<end) }.filter { !$0.isEmpty }
    }
}

extension Array where Element == UInt8 {
    func lastRange(of needle: [UInt8]) -> Range<Int>? {
        guard needle.count <= count else { return nil }
        if needle.isEmpty { return count..<count }
        for start in stride(from: count - needle.count, through: 0, by: -1)
        where self[start..<start + needle.count].elementsEqual(needle) {
            return start..<start + needle.count
        }
        return nil
    }
}

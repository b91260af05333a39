// Real chat templates (SmolLM2, Qwen2.5, Llama-3.1, Llama-3.2, Zephyr) rendered for plain,
// multi-turn and tool-use conversations. The expected texts in ModelTemplateExpectations were
// produced by jinja2 3.1.6 configured as HF transformers' apply_chat_template configures it
// (trim_blocks, lstrip_blocks, loopcontrols, its tojson and raise_exception; strftime_now
// pinned to 2024-09-15 12:00) with the same messages, tools and special tokens as below.

import ChatTemplates
import Foundation
import Testing

enum Conversations {
    static let single = [ChatMessage(role: "user", content: "What is the capital of France?")]

    /// Ends with an assistant turn whose content has surrounding whitespace (Llama trims it).
    static let training = [
        ChatMessage(role: "system", content: "You are a concise assistant."),
        ChatMessage(role: "user", content: "Name a French café drink."),
        ChatMessage(role: "assistant", content: "Café au lait ☕."),
        ChatMessage(role: "user", content: "Tell me a joke."),
        ChatMessage(role: "assistant", content: " Why did the chicken cross the road?\n"),
    ]

    static let followUp = Array(training.prefix(4))

    static let weatherTool: JinjaValue = [
        "type": "function",
        "function": [
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": [
                "type": "object",
                "properties": ["city": ["type": "string"]],
                "required": ["city"],
            ],
        ],
    ]

    static let toolChat = [
        ChatMessage(role: "user", content: "Weather in Paris?"),
        ChatMessage(
            role: "assistant", content: "",
            extraFields: [
                "tool_calls": [
                    [
                        "type": "function",
                        "function": ["name": "get_weather", "arguments": ["city": "Paris"]],
                    ]
                ]
            ]),
        ChatMessage(role: "tool", content: #"{"temp_c": 18}"#),
    ]
}

struct ModelTemplate: CustomTestStringConvertible, Sendable {
    var name: String
    var source: String
    var bosToken: String?
    var eosToken: String?

    var testDescription: String { name }

    static let all = [
        ModelTemplate(
            name: "smollm2", source: ModelTemplates.smolLM2, bosToken: "<|im_start|>",
            eosToken: "<|im_end|>"),
        ModelTemplate(
            name: "qwen25", source: ModelTemplates.qwen25, bosToken: nil, eosToken: "<|im_end|>"),
        ModelTemplate(
            name: "llama31", source: ModelTemplates.llama31, bosToken: "<|begin_of_text|>",
            eosToken: "<|eot_id|>"),
        ModelTemplate(
            name: "llama32", source: ModelTemplates.llama32, bosToken: "<|begin_of_text|>",
            eosToken: "<|eot_id|>"),
        ModelTemplate(
            name: "zephyr", source: ModelTemplates.zephyr, bosToken: "<s>", eosToken: "</s>"),
    ]

    func render(
        _ messages: [ChatMessage], addGenerationPrompt: Bool,
        extraContext: [String: JinjaValue] = [:]
    ) throws -> RenderedChat {
        try ChatTemplate(source: source).render(
            messages: messages, addGenerationPrompt: addGenerationPrompt, bosToken: bosToken,
            eosToken: eosToken,
            extraContext: extraContext, currentDate: ModelTemplate.pinnedDate)
    }

    /// 2024-09-15 12:00 in the local time zone, the date the expectations were rendered with.
    static let pinnedDate = Calendar.current.date(
        from: DateComponents(year: 2024, month: 9, day: 15, hour: 12))!
}

func expectation(_ key: String) throws -> String {
    try #require(ModelTemplateExpectations.texts[key], "no expectation named \(key)")
}

@Suite("Model chat templates match jinja2")
struct ModelTemplateTests {
    @Test(arguments: ModelTemplate.all)
    func singleTurnWithGenerationPrompt(_ model: ModelTemplate) throws {
        let chat = try model.render(Conversations.single, addGenerationPrompt: true)
        #expect(chat.text == (try expectation("\(model.name)/single")))
        #expect(chat.assistantSpans.isEmpty)
    }

    @Test(arguments: ModelTemplate.all)
    func trainingConversation(_ model: ModelTemplate) throws {
        let chat = try model.render(Conversations.training, addGenerationPrompt: false)
        #expect(chat.text == (try expectation("\(model.name)/training")))
        // Each assistant message yields one span holding its content (trimmed by Llama).
        let trims = model.name.hasPrefix("llama")
        #expect(chat.assistantContent.map(\.messageIndex) == [2, 4])
        for span in chat.assistantContent {
            let content = Conversations.training[span.messageIndex].content
            let expected = trims ? content.trimmingCharacters(in: .whitespacesAndNewlines) : content
            #expect(chat.text(utf8: span.utf8Range) == expected)
        }
    }

    @Test(arguments: ModelTemplate.all)
    func followUpWithGenerationPrompt(_ model: ModelTemplate) throws {
        let chat = try model.render(Conversations.followUp, addGenerationPrompt: true)
        #expect(chat.text == (try expectation("\(model.name)/followUp")))
        #expect(chat.assistantContent.map(\.messageIndex) == [2])
    }

    /// The prompt for the last turn is a prefix of the full conversation, so generation and
    /// training see the same tokens before the answer.
    @Test(arguments: ModelTemplate.all)
    func generationPromptIsPrefixOfTrainingText(_ model: ModelTemplate) throws {
        let prompt = try model.render(
            Array(Conversations.training.dropLast()), addGenerationPrompt: true)
        let full = try model.render(Conversations.training, addGenerationPrompt: false)
        #expect(full.text.hasPrefix(prompt.text))
        #expect(full.assistantSpans.last!.lowerBound == prompt.text.utf8.count)
    }

    @Test(arguments: ["qwen25", "llama31", "llama32"])
    func toolDefinitions(_ name: String) throws {
        let model = try #require(ModelTemplate.all.first { $0.name == name })
        let messages =
            name == "qwen25" ? Conversations.toolChat : Array(Conversations.toolChat.prefix(1))
        let chat = try model.render(
            messages, addGenerationPrompt: true,
            extraContext: ["tools": [Conversations.weatherTool]])
        #expect(chat.text == (try expectation("\(name)/tools")))
    }

    @Test func llama31ToolCallWithDateOverride() throws {
        let model = ModelTemplate.all[2]
        let chat = try ChatTemplate(source: model.source).render(
            messages: Conversations.toolChat, addGenerationPrompt: true,
            bosToken: "<|begin_of_text|>",
            eosToken: nil, extraContext: ["date_string": "01 Jan 2025"])
        #expect(chat.text == (try expectation("llama31/toolCall")))
    }

    @Test func llama32WithoutToolsRejectsMultipleToolCalls() throws {
        var messages = Conversations.toolChat
        messages[1].extraFields["tool_calls"] = [
            ["function": ["name": "a"]], ["function": ["name": "b"]],
        ]
        let template = try ChatTemplate(source: ModelTemplates.llama32)
        #expect {
            _ = try template.render(
                messages: messages, addGenerationPrompt: true, bosToken: nil, eosToken: nil)
        } throws: { error in
            (error as? TemplateError)?.message
                == "This model only supports single tool-calls at once!"
        }
    }
}

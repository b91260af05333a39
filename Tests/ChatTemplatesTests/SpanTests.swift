// Assistant spans: which UTF-8 bytes of the rendered text are copies of assistant `content`.
// They must survive the ways templates move content around (concatenation, trim, set,
// macros, namespaces, split), fall back to a text search when a template rebuilds the string,
// and stay exact around multi-byte characters.

import ChatTemplates
import Testing

private let chatML =
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"

private func render(
    _ source: String, _ messages: [ChatMessage], addGenerationPrompt: Bool = false,
    continueFinalMessage: Bool = false
) throws -> RenderedChat {
    try ChatTemplate(source: source).render(
        messages: messages, addGenerationPrompt: addGenerationPrompt, bosToken: "<s>",
        eosToken: "</s>",
        continueFinalMessage: continueFinalMessage)
}

/// The text under each assistant span.
private func spanTexts(_ chat: RenderedChat) -> [String] {
    chat.assistantSpans.map { chat.text(utf8: $0) }
}

@Suite("Assistant content spans")
struct SpanTests {
    let dialogue = [
        ChatMessage(role: "user", content: "ok"),
        ChatMessage(role: "assistant", content: "ok"),
        ChatMessage(role: "user", content: "Où est la gare ? 🚉"),
        ChatMessage(role: "assistant", content: "À gauche, après le café ☕."),
    ]

    @Test func spansCoverExactlyTheAssistantContent() throws {
        let chat = try render(chatML, dialogue)
        #expect(spanTexts(chat) == ["ok", "À gauche, après le café ☕."])
        #expect(chat.assistantContent.map(\.messageIndex) == [1, 3])
        // The user's identical "ok" comes first; the span must point at the assistant's copy.
        let firstOK = try #require(chat.text.utf8.firstRange(of: "ok".utf8))
        let firstOKOffset = chat.text.utf8.distance(
            from: chat.text.utf8.startIndex, to: firstOK.lowerBound)
        #expect(chat.assistantSpans[0].lowerBound > firstOKOffset)
    }

    @Test func spansAreUTF8ByteOffsets() throws {
        let chat = try render(chatML, dialogue)
        let bytes = Array(chat.text.utf8)
        let last = chat.assistantSpans[1]
        #expect(Array(bytes[last]) == Array("À gauche, après le café ☕.".utf8))
        #expect(last.upperBound == bytes.count - "<|im_end|>\n".utf8.count)
    }

    @Test(arguments: [
        // Trim keeps the span on the trimmed text.
        ("{% for m in messages %}[{{ m.content | trim }}]{% endfor %}", "  padded  ", ["padded"]),
        // Assigned to a variable first.
        (
            "{% for m in messages %}{% set c = m['content'] %}<{{ c }}>{% endfor %}", "text",
            ["text"]
        ),
        // Through a macro.
        (
            "{% macro show(m) %}({{ m.content }}){% endmacro %}{% for m in messages %}{{ show(m) }}{% endfor %}",
            "via macro", ["via macro"]
        ),
        // Stored in a namespace and printed after the loop.
        (
            "{% set ns = namespace(last='') %}{% for m in messages %}{% set ns.last = m.content %}{% endfor %}=={{ "
                + "ns.last }}",
            "kept", ["kept"]
        ),
        // Qwen3-style: only the part after the reasoning block is content the model should learn.
        (
            "{% for m in messages %}{{ m.content.split('</think>')[-1].lstrip('\\n') }}{% endfor %}",
            "<think>\nhm\n</think>\n\nAnswer.", ["Answer."]
        ),
        // Concatenation with `~` and `+`.
        (
            "{% for m in messages %}{{ 'A: ' ~ m.content ~ '!' }}{{ '|' + m.content + '|' }}{% endfor %}",
            "x", ["x", "x"]
        ),
        // `string`, `default` and `first` keep the value.
        (
            "{% for m in messages %}{{ m.content | string | default('none') }}{% endfor %}",
            "plain", ["plain"]
        ),
        // Sliced content keeps the span on the slice.
        ("{% for m in messages %}{{ m.content[:4] }}{% endfor %}", "abcdefg", ["abcd"]),
    ])
    func marksSurviveTemplateOperations(_ source: String, _ content: String, _ expected: [String])
        throws
    {
        let chat = try render(source, [ChatMessage(role: "assistant", content: content)])
        #expect(spanTexts(chat) == expected)
    }

    @Test func rebuiltContentIsFoundBySearch() throws {
        // `replace` produces a new string; the content still appears verbatim, so the
        // renderer locates it in the output.
        let source =
            "{% for m in messages %}{{ m.role }}: {{ m.content.replace('x', 'x') }}\n{% endfor %}"
        let chat = try render(source, dialogue)
        #expect(spanTexts(chat) == ["ok", "À gauche, après le café ☕."])
        #expect(chat.assistantContent.map(\.messageIndex) == [1, 3])
    }

    @Test func transformedContentHasNoSpan() throws {
        let chat = try render(
            "{% for m in messages %}{{ m.content | upper }}{% endfor %}",
            [
                ChatMessage(role: "assistant", content: "quiet")
            ])
        #expect(chat.text == "QUIET")
        #expect(chat.assistantSpans.isEmpty)
    }

    @Test func userAndSystemContentIsNotMarked() throws {
        let chat = try render(
            chatML,
            [
                ChatMessage(role: "system", content: "sys"),
                ChatMessage(role: "user", content: "usr"),
            ])
        #expect(chat.assistantSpans.isEmpty)
    }

    @Test func contentOverriddenByExtraFieldsIsNotMarked() throws {
        let chat = try render(
            "{% for m in messages %}[{{ m.content }}]{% endfor %}",
            [ChatMessage(role: "assistant", content: "ignored", extraFields: ["content": nil])])
        #expect(chat.text == "[None]")
        #expect(chat.assistantSpans.isEmpty)
    }

    @Test func generationBlocksAreReported() throws {
        let source = """
            {%- for m in messages %}
            {%- if m.role == 'assistant' %}
            {{- '<|assistant|>' }}{% generation %}{{ m.content + '</s>' }}{% endgeneration %}
            {%- else %}
            {{- '<|user|>' + m.content }}
            {%- endif %}
            {%- endfor %}
            """
        let chat = try render(source, dialogue)
        #expect(
            chat.text
                == "<|user|>ok<|assistant|>ok</s><|user|>Où est la gare ? 🚉"
                + "<|assistant|>À gauche, après le café ☕.</s>")
        #expect(
            chat.generationSpans.map { chat.text(utf8: $0) } == [
                "ok</s>", "À gauche, après le café ☕.</s>",
            ])
        #expect(spanTexts(chat) == ["ok", "À gauche, après le café ☕."])
    }

    @Test func continueFinalMessageCutsAfterTheLastContent() throws {
        var messages = Array(dialogue.prefix(3))
        messages.append(ChatMessage(role: "assistant", content: "À gauche"))
        let chat = try render(chatML, messages, continueFinalMessage: true)
        #expect(chat.text.hasSuffix("<|im_start|>assistant\nÀ gauche"))
        #expect(spanTexts(chat) == ["ok", "À gauche"])
    }

    @Test func continueFinalMessageFindsTrimmedContent() throws {
        let source =
            "{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}</{{ m.role }}>{% endfor %}"
        let chat = try render(
            source, [ChatMessage(role: "assistant", content: "Sure, ")], continueFinalMessage: true)
        #expect(chat.text == "<assistant>Sure,")
        #expect(spanTexts(chat) == ["Sure,"])
    }

    @Test func generationPromptAddsNoSpan() throws {
        let chat = try render(chatML, Array(dialogue.prefix(3)), addGenerationPrompt: true)
        #expect(chat.text.hasSuffix("<|im_start|>assistant\n"))
        #expect(spanTexts(chat) == ["ok"])
    }
}

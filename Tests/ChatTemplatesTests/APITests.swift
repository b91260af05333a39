// The public surface: JinjaValue literals and ordering, the variables a chat render defines
// (mirroring what apply_chat_template passes), strftime_now, and value printing that jinja2
// tests cannot express (NaN, infinity).

import ChatTemplates
import Foundation
import Testing

@Suite("Public API")
struct APITests {
    @Test func jinjaObjectKeepsInsertionOrder() {
        var object: JinjaObject = ["b": 1, "a": 2]
        object["c"] = 3
        object["b"] = 4
        #expect(object.keys == ["b", "a", "c"])
        object["a"] = nil
        #expect(object.pairs.map(\.key) == ["b", "c"])
        #expect(object["b"] == 4)
        #expect(object.count == 2)
    }

    @Test func literalsBuildValues() {
        let value: JinjaValue = ["s": "x", "i": 1, "d": 1.5, "b": true, "n": nil, "l": [1, "a"]]
        guard case .dictionary(let object) = value else {
            Issue.record("expected a dictionary")
            return
        }
        #expect(object["s"] == .string("x"))
        #expect(object["i"] == .int(1))
        #expect(object["d"] == .double(1.5))
        #expect(object["b"] == .bool(true))
        #expect(object["n"] == JinjaValue.none)
        #expect(object["l"] == .array([.int(1), .string("a")]))
    }

    @Test func chatRenderDefinesWhatTransformersPasses() throws {
        let source = """
            {{ messages | length }}|{{ add_generation_prompt }}|{{ tools is none }}|{{ documents is none }}|\
            {{ bos_token is defined }}|{{ eos_token }}|{{ messages[0] | tojson }}|{{ custom }}
            """
        let chat = try ChatTemplate(source: source).render(
            messages: [
                ChatMessage(role: "user", content: "hi", extraFields: ["name": "bob", "id": 7])
            ],
            addGenerationPrompt: true, bosToken: nil, eosToken: "</s>",
            extraContext: ["custom": ["x": 1]])
        #expect(
            chat.text
                == "1|True|True|True|False|</s>|"
                + #"{"role": "user", "content": "hi", "id": 7, "name": "bob"}|{'x': 1}"#)
    }

    @Test func extraContextOverridesDefaults() throws {
        let template = try ChatTemplate(source: "{{ tools | length }} {{ add_generation_prompt }}")
        let chat = try template.render(
            messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil,
            extraContext: ["tools": [["name": "f"]], "add_generation_prompt": true])
        #expect(chat.text == "1 True")
    }

    @Test func strftimeNowFormatsTheGivenDate() throws {
        let date = try #require(
            Calendar.current.date(
                from: DateComponents(year: 2025, month: 3, day: 7, hour: 9, minute: 5)))
        let template = try ChatTemplate(
            source: #"{{ strftime_now("%d %b %Y") }}|{{ strftime_now('%Y-%m-%d %H:%M %A %B') }}"#)
        #expect(
            try template.render(context: [:], currentDate: date)
                == "07 Mar 2025|2025-03-07 09:05 Friday March")
    }

    @Test func nonFiniteNumbersPrintLikePython() throws {
        let template = try ChatTemplate(
            source: "{{ xs }} {{ xs[0] }} {{ xs[1] }} {{ xs | tojson }}")
        let output = try template.render(context: [
            "xs": [.double(.nan), .double(.infinity), .double(-.infinity)]
        ])
        #expect(output == "[nan, inf, -inf] nan inf [NaN, Infinity, -Infinity]")
    }

    @Test func templateIsReusableAndSendable() async throws {
        let template = try ChatTemplate(
            source: "{% for m in messages %}{{ m.content }}{% endfor %}")
        let texts = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<8 {
                group.addTask {
                    try template.render(
                        messages: [ChatMessage(role: "assistant", content: "\(index)")],
                        addGenerationPrompt: false,
                        bosToken: nil, eosToken: nil
                    ).text
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(texts.sorted() == (0..<8).map(String.init))
        #expect(template.source.hasPrefix("{% for"))
    }
}

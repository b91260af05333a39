// SmolLM2's ChatML template against the golden renderings HF transformers produced
// (shared/reference/chat_template_golden.json, written by anchors/ref/gen_golden.py). The
// JSON is embedded below byte for byte so the test runs anywhere; when the shared file is
// reachable the test also checks that the embedded copy is still identical.

import ChatTemplates
import Foundation
import Testing
import _SharedData

@Suite("SmolLM2 golden renderings (HF transformers)")
struct GoldenTests {
    struct Golden: Decodable {
        struct Message: Decodable {
            var role: String
            var content: String
        }

        struct Case: Decodable {
            var messages: [Message]
            var text: String
            var text_without_generation_prompt: String
        }

        var chat_template: String
        var cases: [Case]
    }

    static func golden() throws -> Golden {
        try JSONDecoder().decode(Golden.self, from: Data(GoldenData.chatTemplateGolden.utf8))
    }

    @Test(SharedData.needs("reference/chat_template_golden.json"))
    func embeddedCopyMatchesSharedReference() throws {
        let file = SharedData.url("reference/chat_template_golden.json")
        let shared = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? NSDictionary
        let embedded =
            try JSONSerialization.jsonObject(with: Data(GoldenData.chatTemplateGolden.utf8))
            as? NSDictionary
        #expect(shared == embedded)
    }

    @Test(arguments: 0..<3)
    func rendersGoldenText(_ index: Int) throws {
        let golden = try Self.golden()
        let template = try ChatTemplate(source: golden.chat_template)
        let goldenCase = golden.cases[index]
        let messages = goldenCase.messages.map { ChatMessage(role: $0.role, content: $0.content) }
        for (addGenerationPrompt, expected) in [
            (true, goldenCase.text), (false, goldenCase.text_without_generation_prompt),
        ] {
            let chat = try template.render(
                messages: messages, addGenerationPrompt: addGenerationPrompt,
                bosToken: "<|im_start|>",
                eosToken: "<|im_end|>")
            #expect(Array(chat.text.utf8) == Array(expected.utf8))
            for span in chat.assistantContent {
                #expect(chat.text(utf8: span.utf8Range) == messages[span.messageIndex].content)
            }
            #expect(chat.assistantContent.count == messages.count { $0.role == "assistant" })
        }
    }
}

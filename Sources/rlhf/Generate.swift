// `rlhf generate`: one completion, streamed to the terminal or printed as one JSON object.

import ArgumentParser
import Foundation
import Models
import Tokenizers

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate a completion for a prompt or a chat.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Raw prompt text (no chat template).") var prompt: String?
    @Option(help: "A JSON file with chat messages; the chat template is applied with the generation prompt.") var chat:
        String?
    @Option(name: .customLong("prompt-ids"), help: "Comma-separated prompt token ids.") var promptIDs: String?
    @OptionGroup var sampling: SamplingFlags
    @Flag(help: "Print one JSON object: ids, text, token_logprobs, finish_reason.") var json = false

    func validate() throws {
        let given = [prompt != nil, chat != nil, promptIDs != nil].filter { $0 }.count
        guard given == 1 else { throw ValidationError("Please pass exactly one of --prompt, --chat or --prompt-ids.") }
    }

    struct Output: Encodable {
        let ids: [Int]
        let text: String
        let token_logprobs: [Float]
        let finish_reason: String
        let prompt_tokens: Int
        let tokens_per_second: Double
    }

    func run() throws {
        let loaded = try modelOptions.load(inference: true)
        let ids: [Int]
        if let prompt {
            ids = loaded.tokenizer.encode(prompt, parseSpecialTokens: true)
        } else if let chat {
            ids = try encodeChat(loaded, try readChatFile(chat))
        } else {
            ids = try promptIDs!.split(separator: ",").map { s in
                guard let v = Int(s.trimmingCharacters(in: .whitespaces)), v >= 0,
                    v < loaded.model.config.vocabularySize
                else {
                    throw InputError(
                        "--prompt-ids: '\(s)' is not a token id in 0..<\(loaded.model.config.vocabularySize).")
                }
                return v
            }
        }
        guard !ids.isEmpty else { throw InputError("The prompt encodes to no tokens.") }
        var decoder = StreamingDecoder(tokenizer: loaded.tokenizer)
        let start = Date()
        let result = try loaded.model.generate(
            prompts: [ids.map(Int32.init)], adapter: loaded.adapter,
            options: sampling.options(stop: loaded.stopTokenIDs)
        ) { _, token in
            if !json {
                FileHandle.standardOutput.write(Data(decoder.decode(token).utf8))
            }
        }[0]
        let elapsed = Date().timeIntervalSince(start)
        if json {
            try printJSON(
                Output(
                    ids: result.tokens, text: loaded.tokenizer.decode(result.tokens),
                    token_logprobs: result.tokenLogProbs,
                    finish_reason: result.finishReason.rawValue, prompt_tokens: ids.count,
                    tokens_per_second: Double(result.tokens.count) / elapsed))
        } else {
            print(decoder.finish())
            note(
                String(
                    format: "[%d tokens, %.1f tok/s, finish: %@]", result.tokens.count,
                    Double(result.tokens.count) / elapsed,
                    result.finishReason.rawValue))
        }
    }
}

// `rlhf chat`: an interactive, streaming conversation using the model's chat template.

import ArgumentParser
import Datasets
import Foundation
import Models
import Tokenizers

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Chat interactively (commands: /reset, /exit).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "An optional system message.") var system: String?
    @OptionGroup var sampling: SamplingFlags

    func run() throws {
        let loaded = try modelOptions.load(inference: true)
        var history: [Message] = system.map { [Message(role: .system, content: $0)] } ?? []
        note("Type a message; /reset clears the conversation, /exit (or Ctrl-D) quits.")
        while true {
            FileHandle.standardError.write(Data("> ".utf8))
            guard let line = readLine() else { break }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            if text == "/exit" { break }
            if text == "/reset" { history = system.map { [Message(role: .system, content: $0)] } ?? []; continue }
            history.append(Message(role: .user, content: text))
            // A turn that cannot run (a message beyond the context, a template error) is reported and left out of
            // the conversation; the session goes on.
            let ids: [Int], out: GeneratedSequence
            var decoder = StreamingDecoder(tokenizer: loaded.tokenizer, skipSpecialTokens: true)
            let start = Date()
            do {
                ids = try encodeChat(loaded, history)
                out = try loaded.model.generate(
                    prompts: [ids.map(Int32.init)], adapter: loaded.adapter,
                    options: sampling.options(stop: loaded.stopTokenIDs)
                ) { _, t in
                    FileHandle.standardOutput.write(Data(decoder.decode(t).utf8))
                }[0]
            } catch {
                history.removeLast()
                note("error: \(error)\nThat message was not added; /reset starts a new conversation.")
                continue
            }
            print(decoder.finish())
            note(
                String(
                    format: "[%d tokens, %.1f tok/s]", out.tokens.count,
                    Double(out.tokens.count) / Date().timeIntervalSince(start)))
            let reply = loaded.tokenizer.decode(out.tokens, skipSpecialTokens: true)
            history.append(Message(role: .assistant, content: reply))
        }
    }
}

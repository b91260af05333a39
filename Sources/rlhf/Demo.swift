// `rlhf demo`: the main job on the built-in default model. Today: load, chat generation for a few
// prompts (batched), and a log-prob score; the RLHF stages (SFT → reward model → PPO) join as they land.

import ArgumentParser
import ChatTemplates
import Foundation
import Models

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the end-to-end demo on the default model.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "New tokens per answer.") var maxNewTokens: Int = 48

    func run() throws {
        let loaded = try modelOptions.load()
        let questions = ["What is the capital of France?", "Write a haiku about the sea.", "Give me two tips for sleeping well."]
        let prompts = try questions.map { try loaded.encodeChat([ChatMessage(role: "user", content: $0)], addGenerationPrompt: true) }
        note("Generating \(questions.count) answers in one batch (greedy, up to \(maxNewTokens) tokens)…")
        let start = Date()
        let results = loaded.model.generate(prompts: prompts.map { $0.map(Int32.init) },
                                            options: GenerationOptions(maxNewTokens: maxNewTokens, stopTokenIDs: loaded.stopTokenIDs))
        let elapsed = Date().timeIntervalSince(start)
        for (q, r) in zip(questions, results) {
            print("user: \(q)\nassistant: \(loaded.tokenizer.decode(r.tokens, skipSpecialTokens: true))\n")
        }
        let generated = results.reduce(0) { $0 + $1.tokens.count }
        print(String(format: "generated %d tokens in %.2f s (%.1f tok/s, batch %d)", generated, elapsed, Double(generated) / elapsed, questions.count))
        let lp = loaded.model.sequenceLogProbs(prompt: loaded.tokenizer.encode("The capital of France is", parseSpecialTokens: false).map(Int32.init),
                                               completion: loaded.tokenizer.encode(" Paris.", parseSpecialTokens: false).map(Int32.init))
        print(String(format: "log p(\" Paris.\" | \"The capital of France is\") = %.4f", lp.reduce(0, +)))
    }
}

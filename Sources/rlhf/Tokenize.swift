// `rlhf tokenize` and `rlhf logprobs`: scripting helpers with JSON output.

import ArgumentParser
import Foundation
import ModelExport
import Models
import TensorCore

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokenize text (special-token text is parsed; nothing is added).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "The text to tokenize.") var text: String
    @Flag(help: "Print {\"ids\": [...], \"tokens\": [...]}.") var json = false

    struct Output: Encodable { let ids: [Int]; let tokens: [String] }

    func run() throws {
        let tokenizer = try ModelLoader.loadTokenizer(modelOptions.model, log: note)
        let ids = tokenizer.encode(text, parseSpecialTokens: true)
        let tokens = tokenizer.tokenStrings(ids)
        if json {
            try printJSON(Output(ids: ids, tokens: tokens))
        } else {
            for (i, t) in zip(ids, tokens) { print("\(i)\t\(t)") }
        }
    }
}

struct LogProbs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logprobs",
        abstract: "Log-probability of a completion given a prompt (each tokenized separately, then concatenated).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "The prompt text.") var prompt: String
    @Option(help: "The completion text.") var completion: String
    @Flag(help: "Print {\"token_logprobs\": [...], \"sum\": x}.") var json = false

    struct Output: Encodable { let ids: [Int]; let token_logprobs: [Float]; let sum: Double }

    func run() throws {
        let loaded = try modelOptions.load(inference: true)
        let p = loaded.tokenizer.encode(prompt, parseSpecialTokens: true)
        let c = loaded.tokenizer.encode(completion, parseSpecialTokens: true)
        guard !p.isEmpty else { throw InputError("--prompt encodes to no tokens; a completion needs a context.") }
        guard !c.isEmpty else { throw InputError("--completion encodes to no tokens.") }
        let lps = try loaded.model.sequenceLogProbs(
            prompt: p.map(Int32.init), completion: c.map(Int32.init), adapter: loaded.adapter)
        let sum = lps.reduce(0.0) { $0 + Double($1) }
        if json {
            try printJSON(Output(ids: c, token_logprobs: lps, sum: sum))
        } else {
            for (id, lp) in zip(c, lps) { print("\(id)\t\(loaded.tokenizer.tokenStrings([id])[0])\t\(lp)") }
            print("sum\t\(sum)")
        }
    }
}

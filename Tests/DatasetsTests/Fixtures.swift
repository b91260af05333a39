// Shared test fixtures: the `shared/` folder beside the checkout (data files and golden files,
// read in place, never copied), and the SmolLM2-135M-Instruct tokenizer and chat template built
// from the cached GGUF's metadata the way Models' `Tokenizer.init(gguf:)` does (this test target
// cannot import Models).

import ChatTemplates
import Datasets
import Foundation
import ModelFormats
import Testing
import Tokenizers
import _SharedData

struct FixtureError: Error, CustomStringConvertible {
    var description: String
}

enum Fixtures {
    /// A file under `../shared/`, e.g. `data/bad/empty.jsonl`; tests that read one carry `SharedData.needs`.
    static func shared(_ relative: String) throws -> URL {
        let url = SharedData.url(relative)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw FixtureError(description: "\(url.path) not found (set RLHF_SHARED_DIR)")
        }
        return url
    }

    static func data(_ name: String) throws -> URL { try shared("data/\(name)") }
    static func bad(_ name: String) throws -> URL { try shared("data/bad/\(name)") }

    private static let ggufResult: Result<GGUFFile, any Error> = Result {
        try GGUFFile(contentsOf: try DefaultModelLocation.existingGGUFFile())
    }

    private static let tokenizerResult: Result<Tokenizer, any Error> = Result {
        let metadata = try ggufResult.get().metadata
        guard metadata["tokenizer.ggml.model"]?.string == "gpt2",
            let tokens = metadata["tokenizer.ggml.tokens"]?.strings,
            let merges = metadata["tokenizer.ggml.merges"]?.strings
        else { throw FixtureError(description: "the GGUF has no byte-level BPE tokenizer") }
        return try Tokenizer(
            tokens: tokens, merges: merges,
            tokenTypes: metadata["tokenizer.ggml.token_type"]?.int32s,
            specialTokens: SpecialTokenIDs(
                bos: metadata["tokenizer.ggml.bos_token_id"]?.int,
                eos: metadata["tokenizer.ggml.eos_token_id"]?.int,
                pad: metadata["tokenizer.ggml.padding_token_id"]?.int,
                unknown: metadata["tokenizer.ggml.unknown_token_id"]?.int),
            preTokenizer: PreTokenizerKind(
                ggufName: metadata["tokenizer.ggml.pre"]?.string ?? "gpt-2"),
            chatTemplate: metadata["tokenizer.chat_template"]?.string)
    }

    private static let templateResult: Result<ChatTemplate, any Error> = Result {
        guard let source = try ggufResult.get().metadata["tokenizer.chat_template"]?.string else {
            throw FixtureError(description: "the GGUF has no tokenizer.chat_template")
        }
        return try ChatTemplate(source: source)
    }

    /// SmolLM2-135M-Instruct's tokenizer from the cached GGUF.
    static func tokenizer() throws -> Tokenizer { try tokenizerResult.get() }

    /// SmolLM2's ChatML template from the GGUF.
    static func chatTemplate() throws -> ChatTemplate { try templateResult.get() }

    private static let sftResult: Result<Dataset<SFTExample>, any Error> = Result {
        try Dataset<SFTExample>(contentsOf: data("alpaca_sft.jsonl"))
    }

    /// `alpaca_sft.jsonl`, read once per process.
    static func alpaca() throws -> Dataset<SFTExample> { try sftResult.get() }

    /// Reads a bad file expecting an error, and returns it.
    static func readError<Record: DatasetRecord>(
        _ type: Record.Type, _ name: String, options: ReadOptions = ReadOptions(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> DataError {
        let url = try bad(name)
        let dataset: Dataset<Record>
        do throws(DataError) {
            dataset = try Dataset<Record>(contentsOf: url, options: options)
        } catch {
            return error
        }
        Issue.record(
            "\(name) was accepted with \(dataset.count) records", sourceLocation: sourceLocation)
        throw FixtureError(description: "\(name): no error")
    }
}

// Construction from Hugging Face `tokenizer.json` (+ optional `tokenizer_config.json`), the format
// of HF `tokenizers` (`Tokenizer::from_file`). Only what a byte-level BPE model needs is supported:
// a `BPE` model, no normalizer, a `ByteLevel` pre-tokenizer alone or after `Digits` (SmolLM) or a
// Llama-3 / Qwen2 `Split`, and `added_tokens`. Anything else is rejected with the field's name
// rather than silently tokenizing differently from the reference.

import Foundation
import ModelFormats

extension Tokenizer {
    /// Builds a tokenizer from a Hugging Face `tokenizer.json`, and takes bos / eos / pad / unk
    /// and the chat template from `tokenizer_config.json` when given.
    ///
    /// - Throws: `TokenizerError` naming the file and field for unreadable files, invalid JSON,
    ///   missing or mistyped fields, unsupported features (normalizers, non-BPE models, other
    ///   pre-tokenizers, byte fallback, dropout, …) and merges that name unknown tokens.
    public convenience init(tokenizerJSON: URL, tokenizerConfig: URL? = nil) throws(TokenizerError) {
        let json = try Self.readFile(tokenizerJSON)
        let config = try tokenizerConfig.map { url throws(TokenizerError) in try Self.readFile(url)
        }
        try self.init(
            tokenizerJSONData: json, tokenizerConfigData: config,
            fileNames: (tokenizerJSON.lastPathComponent, tokenizerConfig?.lastPathComponent))
    }

    /// Builds a tokenizer from the contents of `tokenizer.json` and `tokenizer_config.json`.
    public convenience init(
        tokenizerJSONData: Data, tokenizerConfigData: Data? = nil
    ) throws(TokenizerError) {
        try self.init(
            tokenizerJSONData: tokenizerJSONData, tokenizerConfigData: tokenizerConfigData,
            fileNames: ("tokenizer.json", "tokenizer_config.json"))
    }

    private convenience init(
        tokenizerJSONData: Data, tokenizerConfigData: Data?, fileNames: (String, String?)
    ) throws(TokenizerError) {
        let file = try decodeJSON(TokenizerFile.self, from: tokenizerJSONData, file: fileNames.0)
        let configName = fileNames.1 ?? "tokenizer_config.json"
        let config = try tokenizerConfigData.map { data throws(TokenizerError) in
            try decodeJSON(TokenizerConfigFile.self, from: data, file: configName)
        }
        try self.init(
            spec: file.spec(
                file: fileNames.0, config: config.map { ($0, configName) }))
    }

    private static func readFile(_ url: URL) throws(TokenizerError) -> Data {
        do { return try FileContents.read(url) } catch { throw .unreadableFile(path: url.path, reason: error.reason) }
    }
}

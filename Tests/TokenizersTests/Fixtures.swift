// Shared test fixtures: the SmolLM2-135M-Instruct tokenizer built from the cached GGUF's
// `tokenizer.ggml.*` metadata (read once per process with ModelFormats' `GGUFFile`), and the
// golden file `shared/reference/tokenizer_golden.json` beside the repository checkout (produced
// by `anchors/ref/gen_golden.py` with HF transformers).

import Foundation
import ModelFormats
import Testing
import _SharedData

@testable import Tokenizers

struct FixtureError: Error, CustomStringConvertible {
    var description: String
}

/// The `tokenizer.ggml.*` arrays of a GGUF file.
struct GGUFVocabulary {
    var preTokenizer: String
    var tokens: [String]
    var tokenTypes: [Int32]
    var merges: [String]
    var bosTokenID: Int?
    var eosTokenID: Int?
    var unknownTokenID: Int?
    var padTokenID: Int?
    var chatTemplate: String?

    init(_ gguf: GGUFFile) throws {
        let metadata = gguf.metadata
        func require<T>(_ key: String, _ value: (GGUFValue) -> T?) throws -> T {
            guard let entry = metadata[key], let typed = value(entry) else {
                throw FixtureError(description: "\(gguf.url.path): '\(key)' is missing or mistyped")
            }
            return typed
        }
        preTokenizer = try require("tokenizer.ggml.pre", \.string)
        tokens = try require("tokenizer.ggml.tokens", \.strings)
        tokenTypes = try require("tokenizer.ggml.token_type", \.int32s)
        merges = try require("tokenizer.ggml.merges", \.strings)
        bosTokenID = metadata["tokenizer.ggml.bos_token_id"]?.int
        eosTokenID = metadata["tokenizer.ggml.eos_token_id"]?.int
        unknownTokenID = metadata["tokenizer.ggml.unknown_token_id"]?.int
        padTokenID = metadata["tokenizer.ggml.padding_token_id"]?.int
        chatTemplate = metadata["tokenizer.chat_template"]?.string
    }
}

enum Fixtures {
    /// The cached SmolLM2 GGUF, read with `ModelFormats`; a missing file fails with a hint to run
    /// `scripts/pull-default-model.sh`.
    private static let vocabularyResult: Result<GGUFVocabulary, any Error> = Result {
        try GGUFVocabulary(GGUFFile(contentsOf: DefaultModelLocation.existingGGUFFile()))
    }

    static func vocabulary() throws -> GGUFVocabulary { try vocabularyResult.get() }

    static func makeTokenizer(
        _ vocabulary: GGUFVocabulary, preTokenizer: PreTokenizerKind
    ) throws -> Tokenizer {
        try Tokenizer(
            tokens: vocabulary.tokens, merges: vocabulary.merges, tokenTypes: vocabulary.tokenTypes,
            specialTokens: SpecialTokenIDs(
                bos: vocabulary.bosTokenID, eos: vocabulary.eosTokenID, pad: vocabulary.padTokenID,
                unknown: vocabulary.unknownTokenID),
            preTokenizer: preTokenizer, chatTemplate: vocabulary.chatTemplate)
    }

    private static let smolLM2Result: Result<Tokenizer, any Error> = Result {
        let vocabulary = try Fixtures.vocabulary()
        return try makeTokenizer(
            vocabulary, preTokenizer: PreTokenizerKind(ggufName: vocabulary.preTokenizer))
    }

    /// SmolLM2's tokenizer as the GGUF describes it (`smollm` pre-tokenizer).
    static func smolLM2() throws -> Tokenizer { try smolLM2Result.get() }

    private static let smolLM2PlainResult: Result<Tokenizer, any Error> = Result {
        try makeTokenizer(try vocabulary(), preTokenizer: .gpt2)
    }

    /// The same vocabulary with the plain GPT-2 pre-tokenizer (no digit split), as transformers'
    /// GGUF converter builds it.
    static func smolLM2PlainByteLevel() throws -> Tokenizer { try smolLM2PlainResult.get() }

    // MARK: Golden file

    struct GoldenFile: Decodable {
        var description: String
        var nCases: Int
        var specialTokens: [String: Int]
        var cases: [GoldenCase]
    }

    struct GoldenCase: Decodable {
        var text: String
        var ids: [Int]
        var tokens: [String]
        var decoded: String
        var roundtripExact: Bool
        var idsWithPlainBytelevelPretokenizer: [Int]?
    }

    /// The tokenizer golden file (tests that read it carry `SharedData.needs(Fixtures.goldenPath)`).
    static let goldenPath = "reference/tokenizer_golden.json"

    private static let goldenResult: Result<GoldenFile, any Error> = Result {
        let url = SharedData.url(goldenPath)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(GoldenFile.self, from: Data(contentsOf: url))
    }

    static func golden() throws -> GoldenFile { try goldenResult.get() }
}

/// Compares strings by Unicode scalars, not canonical equivalence (which `==` uses).
func expectSameScalars(
    _ actual: String, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(
        Array(actual.unicodeScalars) == Array(expected.unicodeScalars),
        "\(actual.debugDescription) != \(expected.debugDescription)", sourceLocation: sourceLocation
    )
}

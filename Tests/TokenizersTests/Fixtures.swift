// Shared test fixtures: the SmolLM2-135M-Instruct tokenizer built from the cached GGUF (once per
// process) and the golden file `shared/reference/tokenizer_golden.json`, which sits beside the
// repository checkout (produced by `anchors/ref/gen_golden.py` with HF transformers).

import Foundation
import Testing

@testable import Tokenizers

struct FixtureError: Error, CustomStringConvertible {
    var description: String
}

enum Fixtures {
    /// `$RLHF_CACHE_DIR`, else `$XDG_CACHE_HOME/rlhfkit`, else `~/.cache/rlhfkit`.
    static var modelURL: URL {
        let environment = ProcessInfo.processInfo.environment
        let cache: URL
        if let dir = environment["RLHF_CACHE_DIR"], !dir.isEmpty {
            cache = URL(fileURLWithPath: dir)
        } else if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            cache = URL(fileURLWithPath: xdg).appendingPathComponent("rlhfkit")
        } else {
            cache = FileManager.default.homeDirectoryForCurrentUser
                .appendingPathComponent(".cache/rlhfkit")
        }
        return cache.appendingPathComponent(
            "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    private static let vocabularyResult: Result<GGUFVocabulary, any Error> = Result {
        let url = modelURL
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw FixtureError(
                description: "SmolLM2 GGUF not found at \(url.path). "
                    + "Run scripts/pull-default-model.sh to download and cache it.")
        }
        return try GGUFVocabulary.load(url)
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
        return try makeTokenizer(vocabulary, preTokenizer: PreTokenizerKind(ggufName: vocabulary.preTokenizer))
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

    /// Directories that may hold `shared/`: beside this checkout (as CI lays it out), also with
    /// symbolic links in the test source path resolved.
    static var sharedDirectoryCandidates: [URL] {
        var candidates: [URL] = []
        if let dir = ProcessInfo.processInfo.environment["RLHF_SHARED_DIR"] {
            candidates.append(URL(fileURLWithPath: dir))
        }
        let testsDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for dir in [testsDir, testsDir.resolvingSymlinksInPath()] {
            let repository = dir.deletingLastPathComponent().deletingLastPathComponent()
            candidates.append(repository.appendingPathComponent("shared"))
            candidates.append(repository.deletingLastPathComponent().appendingPathComponent("shared"))
        }
        return candidates
    }

    private static let goldenResult: Result<GoldenFile, any Error> = Result {
        let relative = "reference/tokenizer_golden.json"
        guard
            let url = sharedDirectoryCandidates.map({ $0.appendingPathComponent(relative) })
                .first(where: { FileManager.default.fileExists(atPath: $0.path) })
        else {
            throw FixtureError(
                description: "shared/\(relative) not found beside the checkout; looked in "
                    + sharedDirectoryCandidates.map(\.path).joined(separator: ", "))
        }
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
        "\(actual.debugDescription) != \(expected.debugDescription)", sourceLocation: sourceLocation)
}

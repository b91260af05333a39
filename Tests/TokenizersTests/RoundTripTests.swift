// decode(encode(s)) == s on seeded random Unicode: combining marks, emoji sequences, CJK, numerals,
// whitespace runs, apostrophes and special-token look-alikes.

import Testing

@testable import Tokenizers

@Suite("Round trips")
struct RoundTripTests {
    /// Fragments that random strings are built from. SmolLM2 has no tokens for bytes 0x04, 0x06,
    /// 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2 and 0xF5-0xFF, so U+40000...U+BFFFF and
    /// those C0 controls are left out (they are dropped, as in llama.cpp and HF; see
    /// `missingBytesAreDropped`).
    static let fragments: [String] = [
        "a", "Z", "the", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n ", "\u{A0}", "\u{3000}",
        "\u{2028}", "\u{85}", "0", "7", "42", "٣", "½", "Ⅻ", "²", "'", "'s", "'LL", "'ve", "ſ", ".",
        "!?", "-", "(", "<", "|", ">", "<|", "|>", "<|im_start|>", "<|im_end|>", "e\u{301}",
        "\u{308}",
        "\u{327}\u{301}", "é", "ß", "Å", "Привет", "日本", "語", "한국", "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷",
        "🏳️‍🌈", "\u{200D}", "\u{200B}", "\u{FEFF}", "\u{AD}", "\u{E000}", "\u{10FFFD}", "\u{E0041}",
        "\u{1F}", "\u{7F}", "\u{0}",
    ]

    static func randomString(_ random: inout SplitMix64) -> String {
        (0..<random.next(below: 24)).map { _ in fragments[random.next(below: fragments.count)] }
            .joined()
    }

    @Test(arguments: [PreTokenizerKind.smollm, .gpt2])
    func randomUnicodeRoundTrips(_ kind: PreTokenizerKind) throws {
        let tokenizer =
            kind == .smollm ? try Fixtures.smolLM2() : try Fixtures.smolLM2PlainByteLevel()
        var random = SplitMix64(seed: 2024)
        for _ in 0..<1000 {
            let text = Self.randomString(&random)
            expectSameScalars(
                tokenizer.decode(tokenizer.encode(text, parseSpecialTokens: false)), text)
            expectSameScalars(
                tokenizer.decode(tokenizer.encode(text, parseSpecialTokens: true)), text)
        }
    }

    @Test(arguments: [PreTokenizerKind.llama3, .qwen2])
    func otherPreTokenizersRoundTrip(_ kind: PreTokenizerKind) throws {
        let vocabulary = try Fixtures.vocabulary()
        let tokenizer = try Fixtures.makeTokenizer(vocabulary, preTokenizer: kind)
        var random = SplitMix64(seed: 99)
        for _ in 0..<300 {
            let text = Self.randomString(&random)
            expectSameScalars(
                tokenizer.decode(tokenizer.encode(text, parseSpecialTokens: false)), text)
        }
    }

    @Test func missingBytesAreDropped() throws {
        let tokenizer = try Fixtures.smolLM2()
        // "\u{4}" is its own word ("a", "\u{4}", "b") and has no byte token, so it vanishes.
        #expect(tokenizer.encode("a\u{4}b", parseSpecialTokens: false) == [81, 82])
        #expect(tokenizer.tokenStrings([81, 82]) == ["a", "b"])
    }

    @Test func encodingIsDeterministicAcrossThreads() async throws {
        let tokenizer = try Fixtures.smolLM2()
        var random = SplitMix64(seed: 5)
        let texts = (0..<200).map { _ in Self.randomString(&random) }
        let expected = texts.map { tokenizer.encode($0, parseSpecialTokens: true) }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    texts.indices.filter { $0 % 4 == worker }.allSatisfy {
                        tokenizer.encode(texts[$0], parseSpecialTokens: true) == expected[$0]
                    }
                }
            }
            for try await matched in group { #expect(matched) }
        }
    }
}

// Merge order on tiny vocabularies, and the two merge strategies (rank-array scan for short words,
// heap for long ones) agreeing on the SmolLM2 merge table.

import Foundation
import Testing

@testable import Tokenizers

/// A byte-level tokenizer over all 256 single bytes plus the tokens the merges produce.
func makeTinyTokenizer(
    merges: [String], extraTokens: [String] = [], tokenTypes: [Int32]? = nil,
    specialTokens: SpecialTokenIDs = SpecialTokenIDs(), preTokenizer: PreTokenizerKind = .gpt2,
    ignoresMerges: Bool? = nil
) throws -> Tokenizer {
    var tokens = extraTokens
    for byte in 0..<256 { tokens.append(ByteLevel.encode([UInt8(byte)])) }
    for merge in merges {
        let merged = merge.replacingOccurrences(of: " ", with: "")
        if !tokens.contains(merged) { tokens.append(merged) }
    }
    let types = tokenTypes.map { $0 + [Int32](repeating: 1, count: tokens.count - $0.count) }
    return try Tokenizer(
        tokens: tokens, merges: merges, tokenTypes: types, specialTokens: specialTokens,
        preTokenizer: preTokenizer, ignoresMerges: ignoresMerges)
}

@Suite("BPE merges")
struct BPETests {
    @Test func lowerRankMergesFirst() throws {
        let bcFirst = try makeTinyTokenizer(merges: ["b c", "a b", "a bc"])
        #expect(bcFirst.tokenStrings(bcFirst.encode("abc", parseSpecialTokens: false)) == ["abc"])
        let abFirst = try makeTinyTokenizer(merges: ["a b", "b c"])
        #expect(
            abFirst.tokenStrings(abFirst.encode("abc", parseSpecialTokens: false)) == ["ab", "c"])
    }

    @Test func equalRanksMergeLeftmostFirst() throws {
        let tokenizer = try makeTinyTokenizer(merges: ["a a"])
        #expect(
            tokenizer.tokenStrings(tokenizer.encode("aaaaa", parseSpecialTokens: false)) == [
                "aa", "aa", "a",
            ])
    }

    @Test func ignoresMergesUsesWholeWordTokens() throws {
        // "abc" is in the vocabulary but no merge sequence reaches it.
        let plain = try makeTinyTokenizer(
            merges: ["a b"], extraTokens: ["abc"], ignoresMerges: false)
        #expect(plain.tokenStrings(plain.encode("abc", parseSpecialTokens: false)) == ["ab", "c"])
        let llama = try makeTinyTokenizer(
            merges: ["a b"], extraTokens: ["abc"], preTokenizer: .llama3)
        #expect(llama.ignoresMerges)
        #expect(llama.tokenStrings(llama.encode("abc", parseSpecialTokens: false)) == ["abc"])
    }

    @Test func spaceIsTheByteLevelG() throws {
        let tokenizer = try makeTinyTokenizer(merges: ["Ġ a"])
        #expect(
            tokenizer.tokenStrings(tokenizer.encode("a a", parseSpecialTokens: false)) == [
                "a", "Ġa",
            ])
        #expect(tokenizer.decode(tokenizer.encode("a a", parseSpecialTokens: false)) == "a a")
    }

    @Test func heapAndScanAgreeOnRandomWords() throws {
        let tokenizer = try Fixtures.smolLM2()
        var random = SplitMix64(seed: 42)
        let alphabets: [[String]] = [
            "abcdefghij".map(String.init), "etaoin sh".map(String.init), ["t", "h"],
            ["é", "中", "e"],
            [" ", "\n"], ["😀", "a"],
        ]
        for _ in 0..<300 {
            let alphabet = alphabets[random.next(below: alphabets.count)]
            let length = 2 + random.next(below: 200)
            let word = Array(
                (0..<length).map { _ in alphabet[random.next(below: alphabet.count)] }.joined().utf8
            )
            let initial = word.map { tokenizer.byteTokenIDs[Int($0)] }
            var scanned = initial
            tokenizer.merges.applyByScanning(to: &scanned)
            var heaped = initial
            tokenizer.merges.applyWithHeap(to: &heaped)
            #expect(scanned == heaped)
            #expect(tokenizer.decode(scanned.map(Int.init)).utf8.elementsEqual(word))
        }
    }

    @Test func longWordsStayFast() throws {
        let tokenizer = try Fixtures.smolLM2()
        let text = String(repeating: "ab", count: 20_000)
        let start = ContinuousClock.now
        let ids = tokenizer.encode(text, parseSpecialTokens: false)
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(tokenizer.decode(ids) == text)
    }
}

/// Deterministic generator for seeded tests (SplitMix64, Steele et al. 2014).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func next(below bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

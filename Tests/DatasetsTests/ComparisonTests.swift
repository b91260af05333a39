// Reward-model comparisons: pairs with an optional margin and K-wise rankings read with file/line/field
// errors (a ranking must be a permutation), and encoded with pairs of identical sides skipped and counted.

import Datasets
import Foundation
import Testing

private func comparisons(_ text: String) throws(DataError) -> Dataset<Comparison> {
    try Dataset<Comparison>(data: Data(text.utf8), name: "mem.jsonl")
}

@Suite("Comparisons")
struct ComparisonTests {
    @Test func pairsKeepTheirMarginAndRankingsTheirOrder() throws {
        let pairs = try comparisons(
            #"{"prompt": "p", "chosen": "a", "rejected": "b", "margin": 1.5}"# + "\n"
                + #"{"prompt": "q", "chosen": "c", "rejected": "d"}"# + "\n")
        #expect(pairs.format == .standardPreference)
        #expect(pairs.records[0] == .pair(.text(prompt: "p", chosen: "a", rejected: "b"), margin: 1.5))
        #expect(pairs.records[1] == .pair(.text(prompt: "q", chosen: "c", rejected: "d"), margin: nil))
        let ranked = try comparisons(#"{"prompt": "p", "completions": ["x", "y", "z"], "ranking": [2, 0, 1]}"#)
        #expect(ranked.format == .standardRanking)
        #expect(ranked.records[0] == .ranked(.text(prompt: "p", completions: ["x", "y", "z"]), ranking: [2, 0, 1]))
        let chat = try comparisons(
            #"{"prompt": [{"role": "user", "content": "hi"}], "completions": ["#
                + #"[{"role": "assistant", "content": "a"}], [{"role": "assistant", "content": "b"}]], "#
                + #""ranking": [1, 0]}"#)
        #expect(chat.format == .conversationalRanking)
    }

    @Test(arguments: [
        (#"{"prompt": "p", "completions": ["x", "y", "z"], "ranking": [0, 0, 1]}"#, "ranking", "permutation"),
        (#"{"prompt": "p", "completions": ["x", "y"], "ranking": [0, 2]}"#, "ranking", "indices of `completions`"),
        (#"{"prompt": "p", "completions": ["x", "y"], "ranking": [0]}"#, "ranking", "permutation"),
        (#"{"prompt": "p", "completions": ["x"], "ranking": [0]}"#, "completions", "at least 2"),
        (#"{"prompt": "p", "completions": ["x", 3], "ranking": [0, 1]}"#, "completions[1]", "a string"),
        (#"{"prompt": "p", "completions": ["x", "y"]}"#, "ranking", "ranking"),
        (#"{"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}"#, "margin", "a finite number"),
    ])
    func badComparisonsNameLineAndField(line: String, field: String, expected: String) {
        do {
            let valid =
                line.contains("completions")
                ? #"{"prompt": "ok", "completions": ["a", "b"], "ranking": [1, 0]}"#
                : #"{"prompt": "ok", "chosen": "a", "rejected": "b"}"#
            _ = try comparisons(valid + "\n" + line + "\n")
            Issue.record("accepted: \(line)")
        } catch {
            #expect(error.line == 2 && error.field == field, "\(error)")
            #expect(error.description.contains(expected), "\(error)")
        }
    }

    @Test func identicalPairsAreSkippedAndCounted() throws {
        let tokenizer = try Fixtures.tokenizer()
        let encoder = try PreferenceEncoder(tokenizer: tokenizer, chatTemplate: try Fixtures.chatTemplate())
        let pairs = try comparisons(
            #"{"prompt": "p", "chosen": "same", "rejected": "same"}"# + "\n"
                + #"{"prompt": "p", "chosen": "yes", "rejected": "no", "margin": 2}"# + "\n")
        let (encodedPairs, report) = try encoder.encode(pairs)
        #expect(report.identical == 1 && report.identicalLines == [1])
        #expect(report.description.contains("1 skipped with identical chosen and rejected (lines 1)"))
        #expect(encodedPairs.map(\.sourceLine) == [2])
        #expect(encodedPairs[0].margin == 2 && encodedPairs[0].ranking == [0, 1])
        let rankings = try comparisons(
            #"{"prompt": "p", "completions": ["a", "b", "a"], "ranking": [0, 1, 2]}"# + "\n"
                + #"{"prompt": "p", "completions": ["a", "b", "c"], "ranking": [1, 2, 0]}"# + "\n")
        let (encoded, rankingReport) = try encoder.encode(rankings)
        #expect(rankingReport.identical == 1 && encoded.map(\.sourceLine) == [2])
        #expect(encoded[0].completionIDs.count == 3 && encoded[0].ranking == [1, 2, 0])
        #expect(encoded[0].orderedPairs.map { [$0.better, $0.worse] } == [[1, 2], [1, 0], [2, 0]])
        // The same pair read as a plain preference file is skipped by the same rule.
        let plain = try Dataset<PreferenceExample>(
            data: Data((#"{"prompt": "p", "chosen": "same", "rejected": "same"}"# + "\n").utf8), name: "p.jsonl")
        #expect(try encoder.encode(plain).report.identical == 1)
    }

    @Test func unpairedCompletionsCarryALabel() throws {
        let data = try Dataset<UnpairedExample>(
            data: Data(
                (#"{"prompt": "p", "completion": "good", "label": true}"# + "\n"
                    + #"{"prompt": "p", "completion": "bad", "label": false}"# + "\n").utf8), name: "kto.jsonl")
        #expect(data.format == .standardUnpairedPreference)
        #expect(data.records.map(\.label) == [true, false])
        #expect(data.records[0].completion == .text(prompt: "p", completion: "good"))
        do {
            _ = try Dataset<UnpairedExample>(
                data: Data(#"{"prompt": "p", "completion": "good", "label": "yes"}"#.utf8), name: "kto.jsonl")
            Issue.record("a string label was accepted")
        } catch {
            #expect(error.line == 1 && error.field == "label" && error.description.contains("true (desirable)"))
        }
    }
}

// The reward model on a small random model (no files needed beyond a temporary JSONL): it separates a
// separable toy preference set (pairs, and K-wise rankings scored once per response), its saved adapter + score
// head scores the same after loading with its normalisation, a reward model is refused on another tokenizer, and
// its resume is bit-identical through the shared loop.

import Foundation
import ModelExport
import Models
import TensorCore
import Testing
import _TestSupport

@testable import Trainers

@Suite struct RewardTrainerTests {
    /// Chosen responses end in "yes" and rejected ones in "no", whatever the prompt: separable.
    static func pairsFile(count: Int, in dir: URL, name: String, seed: Int) throws -> URL {
        let lines = (0..<count).map { i -> String in
            let a = (i * 7 + seed) % 10, b = (i * 3 + seed) % 10
            return
                "{\"prompt\": \"\(a)+\(b)?\", \"chosen\": \" \(a + b) yes\", \"rejected\": \" \((a + b + 1) % 19) no\"}"
        }
        let url = dir.appendingPathComponent(name)
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Four completions per prompt ranked "yes" > "ok" > "meh" > "no": separable, K = 4.
    static func rankingsFile(count: Int, in dir: URL, name: String, seed: Int) throws -> URL {
        let lines = (0..<count).map { i -> String in
            let a = (i * 7 + seed) % 10, b = (i * 3 + seed) % 10
            return "{\"prompt\": \"\(a)+\(b)?\", \"completions\": [\" \(a) meh\", \" \(a + b) yes\", \" \(b) no\", "
                + "\" \(a * b) ok\"], \"ranking\": [1, 3, 0, 2]}"
        }
        let url = dir.appendingPathComponent(name)
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    static func trainer(
        out: URL, data dir: URL, steps: Int, kWise: Bool = false, configure: (inout RewardConfig) -> Void = { _ in }
    ) throws -> RewardTrainer {
        var c = RewardConfig()
        c.maxSteps = steps
        c.batchSize = 4
        c.learningRate = 2e-2
        c.loraRank = 4
        c.loraDropout = 0
        c.maxLength = 24
        c.maxPromptLength = 8
        c.loggingSteps = 1
        c.evalSteps = 0
        c.saveSteps = 1000
        c.warmupSteps = 2
        configure(&c)
        var config = RandomModel.config
        config.vocabularySize = 256
        let loaded = LoadedModel(
            model: RandomModel.make(trainable: c.loraRank == 0, config: config),
            tokenizer: try Fixtures.byteTokenizer(),
            chatTemplate: nil, source: dir)
        let file = kWise ? rankingsFile : pairsFile
        let data = try ComparisonData.prepare(
            training: c.training, maxPromptLength: c.effectiveMaxPromptLength, tokenizer: loaded.tokenizer,
            chatTemplate: nil, trainFile: try file(kWise ? 24 : 48, dir, "train.jsonl", 0),
            evalFile: try file(16, dir, "eval.jsonl", 5))
        return try RewardTrainer(config: c, model: loaded, data: data, outputDirectory: out, baseModel: "random")
    }

    @Test func separatesAToySetAndReloadsWithItsHead() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Self.trainer(out: dir.appendingPathComponent("out"), data: dir, steps: 40)
        let before = try t.evaluate(t.data.eval)
        var last: Metrics = [:]
        try t.train(onEvent: { event in
            if case let .evaluation(_, m) = event { last = m }
            return .proceed
        })
        #expect(
            last["eval_accuracy"] == 1, "held-out accuracy \(before["eval_accuracy"]!) → \(last["eval_accuracy"] ?? -1)"
        )
        #expect(last["eval_loss"]! < before["eval_loss"]!)
        let metrics = try String(contentsOf: dir.appendingPathComponent("out/metrics.jsonl"), encoding: .utf8)
        for key in ["\"loss\"", "\"accuracy\"", "\"margin\"", "\"mean_reward\"", "\"eval_accuracy\""] {
            #expect(metrics.contains(key), "\(key)")
        }

        // adapter/ holds the adapter and the score head; loaded back, it scores the same.
        let exported = try t.exportFinal()
        let fresh = LoadedModel(
            model: RandomModel.make(config: t.loaded.model.config), tokenizer: t.loaded.tokenizer, chatTemplate: nil,
            source: exported)
        let reloaded = try RewardModel(try ModelLoader.load(adapter: exported, onto: fresh, name: "rm"))
        let rows = RewardLoss.rows(t.data.eval).rows
        #expect(try t.rewardModel.scores(rows) == reloaded.scores(rows))
    }

    /// InstructGPT's K-wise batch: each of a group's K responses is one row, and the loss is the mean of its
    /// C(K, 2) pairwise Bradley–Terry losses on those K scores.
    @Test func kWiseBatchScoresEachResponseOnceAndLearnsTheRanking() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Self.trainer(out: dir.appendingPathComponent("out"), data: dir, steps: 40, kWise: true)
        let groups = Array(t.data.train.prefix(3))
        let (batch, ranked) = t.batch(groups)
        #expect(batch.batchSize == 12 && ranked.map(\.ranked) == [[1, 3, 0, 2], [5, 7, 4, 6], [9, 11, 8, 10]])
        let r = try t.rewardModel.scores(RewardLoss.rows(groups).rows)
        var pairLosses: [Double] = []
        for g in ranked {
            let pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)].map { (g.ranked[$0.0], g.ranked[$0.1]) }
            pairLosses.append(
                RewardLoss.evaluate(chosen: pairs.map { r[$0.0] }, rejected: pairs.map { r[$0.1] }).loss)
        }
        let grouped = RewardLoss.evaluate(rewards: r, groups: ranked)
        #expect(abs(grouped.loss - pairLosses.reduce(0, +) / 3) <= 1e-12 && grouped.pairs == 18)
        var last: Metrics = [:]
        try t.train(onEvent: { event in
            if case let .evaluation(_, m) = event { last = m }
            return .proceed
        })
        #expect(last["eval_accuracy"]! >= 0.95, "held-out pairwise accuracy \(last)")
        #expect(last["eval_pairs"] == 96, "16 held-out groups of 4: 6 pairs each")
    }

    /// `reward_model.json` carries the reward statistics and the tokenizer fingerprint; loading the reward model
    /// onto a model with another tokenizer is refused with both fingerprints named.
    @Test func savedStatisticsNormaliseAndAnotherTokenizerIsRefused() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Self.trainer(out: dir.appendingPathComponent("out"), data: dir, steps: 10) { $0.loraRank = 0 }
        try t.train()
        let exported = try t.exportFinal()  // model/: a sequence-classification directory
        let rm = try RewardModel.load(reward: exported, model: "unused")
        let n = try #require(rm.normalization)
        #expect(n.samples == 96 && n.std > 0)
        let rows = RewardLoss.rows(t.data.train).rows
        let normalised = try rm.scores(rows).map(rm.normalized)
        let mean = normalised.reduce(0, +) / Double(normalised.count)
        let std = (normalised.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(normalised.count)).squareRoot()
        #expect(abs(mean) <= 1e-6 && abs(std - 1) <= 1e-6, "all 96 training responses sampled: mean 0, std 1")

        // The same directory with a card naming another tokenizer.
        let cardURL = exported.appendingPathComponent(CheckpointLayout.rewardModelFile)
        var card = try JSONDecoder().decode(RewardModelCard.self, from: Data(contentsOf: cardURL))
        let own = card.tokenizerFingerprint
        card.tokenizerFingerprint = String(repeating: "0", count: 64)
        try JSONEncoder().encode(card).write(to: cardURL)
        #expect {
            try RewardModel.load(reward: exported, model: "unused")
        } throws: { error in
            let text = "\(error)"
            return text.contains("000000000000") && text.contains(own.prefix(12)) && text.contains("tokenizer")
        }
    }

    @Test func resumeIsBitIdentical() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let straight = try Self.trainer(out: dir.appendingPathComponent("a"), data: dir, steps: 8)
        try straight.train()
        let first = try Self.trainer(out: dir.appendingPathComponent("b"), data: dir, steps: 8)
        try first.train(onEvent: { event in
            if case let .step(step, _, _) = event, step == 3 { return .stop }
            return .proceed
        })
        let resumed = try Self.trainer(out: dir.appendingPathComponent("b"), data: dir, steps: 8)
        try resumed.train(resume: dir.appendingPathComponent("b"))
        for (x, y) in zip(resumed.loop.groups, straight.loop.groups) {
            #expect(x.store.values.array == y.store.values.array, "\(x.name)")
        }
    }

    /// A micro-batch whose activations exceed the pass budget runs as several passes: the same loss, metrics and
    /// gradient (full weights and head) as one pass, up to float rounding, and the passes share it out evenly.
    @Test func aMicroBatchAboveTheBudgetRunsInPassesWithTheSameGradient() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func run(budget: Int?, _ name: String) throws -> (RewardTrainer, MetricSums) {
            let t = try Self.trainer(out: dir.appendingPathComponent(name), data: dir, steps: 1) { c in
                c.loraRank = 0
                c.batchSize = 5
                if let budget { c.training.passBudgetBytes = budget }
            }
            for g in t.loop.groups { g.store.zeroGradients() }
            return (t, try t.accumulateGradients(step: 0, microBatches: 2, shard: .whole))
        }
        let (one, a) = try run(budget: nil, "one")
        let (split, b) = try run(budget: 1, "split")
        #expect(one.comparisonsPerPass == 5 && split.comparisonsPerPass == 1)
        #expect(a.tokens == b.tokens)
        try Fixtures.expectSameStep(
            (one.loop.groups, a), (split.loop.groups, b), metrics: ["loss", "accuracy", "margin", "mean_reward"])
        // Balanced passes: with room for 3 comparisons a pass, 8 run as 3 + 3 + 2, and 7 as 3 + 2 + 2 → 3.
        var t = TrainingArguments()
        let perExample =
            2.0 * 100 * Double(RandomModel.config.layerCount)
            * TrainingArguments.savedFloatsPerToken(RandomModel.config) * 4
        t.passBudgetBytes = Int(3.5 * perExample)
        for (batch, expected) in [(8, 3), (7, 3), (6, 3), (4, 2), (3, 3), (1, 1)] {
            t.batchSize = batch
            #expect(t.examplesPerPass(for: RandomModel.config, rowsPerExample: 2, length: 100) == expected, "\(batch)")
        }
    }

    /// Rewards are read at each row's last real token whatever the batch: with pad = EOS, a response ending in EOS
    /// is read at that EOS and a truncated one (no EOS) at its last token, alone or padded beside longer rows.
    @Test func scoresDoNotDependOnPaddingWhenPadIsEOS() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Self.trainer(out: dir.appendingPathComponent("out"), data: dir, steps: 1)
        let eos = Int32(try #require(t.loaded.tokenizer.eosTokenID))
        #expect(t.loaded.padTokenID == eos)
        let rows: [[Int32]] = [[40, 41, 42, 43, eos], [50, 51, 52, 53, 54, 55, 56, 57, 58], [60, 61, eos], [70]]
        let batched = try t.rewardModel.scores(rows, batchSize: 4)
        let alone = try rows.flatMap { try t.rewardModel.scores([$0], batchSize: 1) }
        for (b, a) in zip(batched, alone) { #expect(abs(b - a) <= 1e-5 * max(1, abs(a)), "\(b) vs \(a)") }
        // Reading the pad positions instead would change the scores of the short rows: the rows differ.
        #expect(Set(batched).count == rows.count)
    }
}

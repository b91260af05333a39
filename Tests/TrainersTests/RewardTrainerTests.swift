// The reward model on a small random model (no files needed beyond a temporary JSONL): it separates a
// separable toy preference set, its saved adapter + score head scores the same after loading, and its
// resume is bit-identical through the shared loop.

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

    static func trainer(out: URL, data dir: URL, steps: Int) throws -> RewardTrainer {
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
        var config = RandomModel.config
        config.vocabularySize = 256
        let loaded = LoadedModel(
            model: RandomModel.make(config: config), tokenizer: try Fixtures.byteTokenizer(), chatTemplate: nil,
            source: dir)
        let data = try PreferenceData.prepare(
            training: c.training, maxPromptLength: c.effectiveMaxPromptLength, tokenizer: loaded.tokenizer,
            chatTemplate: nil, trainFile: try pairsFile(count: 48, in: dir, name: "train.jsonl", seed: 0),
            evalFile: try pairsFile(count: 16, in: dir, name: "eval.jsonl", seed: 5))
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
        let want = try t.rewardModel.scores(t.data.eval), got = try reloaded.scores(t.data.eval)
        #expect(want.map(\.chosen) == got.map(\.chosen) && want.map(\.rejected) == got.map(\.rejected))
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
}

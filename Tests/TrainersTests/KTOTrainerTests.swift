// KTO on a small random model with labelled toy completions: the first step sits at the reference (every
// log-ratio 0, z₀ 0, loss ½ per weighted example), and training moves desirable completions above the reference
// and undesirable ones below it; its resume is bit-identical through the shared loop.

import Datasets
import Foundation
import Models
import Testing
import _TestSupport

@testable import Trainers

@Suite struct KTOTrainerTests {
    /// "yes" completions are desirable, "no" ones undesirable, alternating.
    static func examplesFile(count: Int, in dir: URL, name: String, seed: Int) throws -> URL {
        let lines = (0..<count).map { i -> String in
            let a = (i * 7 + seed) % 10, b = (i * 3 + seed) % 10
            return i % 2 == 0
                ? "{\"prompt\": \"\(a)+\(b)?\", \"completion\": \" \(a + b) yes\", \"label\": true}"
                : "{\"prompt\": \"\(a)+\(b)?\", \"completion\": \" \(a * b) no\", \"label\": false}"
        }
        let url = dir.appendingPathComponent(name)
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    static func trainer(out: URL, data dir: URL, steps: Int) throws -> KTOTrainer {
        var c = KTOConfig()
        c.maxSteps = steps
        c.batchSize = 4
        c.learningRate = 1e-2
        c.loraRank = 4
        c.loraDropout = 0
        c.maxLength = 24
        c.loggingSteps = 1
        c.evalSteps = 0
        c.saveSteps = 1000
        var config = RandomModel.config
        config.vocabularySize = 256
        let loaded = LoadedModel(
            model: RandomModel.make(config: config), tokenizer: try Fixtures.byteTokenizer(), chatTemplate: nil,
            source: dir)
        let data = try KTOData.prepare(
            training: c.training, maxPromptLength: c.effectiveMaxPromptLength, tokenizer: loaded.tokenizer,
            chatTemplate: nil, trainFile: try examplesFile(count: 24, in: dir, name: "train.jsonl", seed: 0),
            evalFile: try examplesFile(count: 8, in: dir, name: "eval.jsonl", seed: 5))
        return try KTOTrainer(config: c, model: loaded, data: data, outputDirectory: out, baseModel: "random")
    }

    @Test func startsAtTheReferenceAndSeparatesTheLabels() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Self.trainer(out: dir.appendingPathComponent("out"), data: dir, steps: 30)
        #expect(t.data.train.filter(\.label).count == 12)
        var steps: [Metrics] = []
        try t.train(onEvent: { event in
            if case let .step(_, _, m) = event { steps.append(m) }
            return .proceed
        })
        // Policy = reference at step 1: r = 0, z₀ = 0 (up to summation order), ℓ = 1 − σ(0) = ½ for every example.
        #expect(abs(steps[0]["loss"]! - 0.5) <= 1e-6 && abs(steps[0]["kl"]!) <= 1e-6, "\(steps[0])")
        let policy = try t.logProbs(t.data.train, indices: Array(t.data.train.indices), adapter: t.adapter)
        var up = 0.0, down = 0.0
        for (i, e) in t.data.train.enumerated() {
            let r = policy[i].own - t.referenceTrain[i].own
            if e.label { up += r / 12 } else { down += r / 12 }
        }
        #expect(up > 0.5 && down < -0.5, "mean log-ratio: desirable \(up), undesirable \(down)")
        #expect(steps.suffix(3).map { $0["loss"]! }.reduce(0, +) < 1.5 * 0.9)
    }

    @Test func resumeIsBitIdentical() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let straight = try Self.trainer(out: dir.appendingPathComponent("a"), data: dir, steps: 6)
        try straight.train()
        let first = try Self.trainer(out: dir.appendingPathComponent("b"), data: dir, steps: 6)
        try first.train(onEvent: { event in
            if case let .step(step, _, _) = event, step == 2 { return .stop }
            return .proceed
        })
        let resumed = try Self.trainer(out: dir.appendingPathComponent("b"), data: dir, steps: 6)
        try resumed.train(resume: dir.appendingPathComponent("b"))
        for (x, y) in zip(resumed.loop.groups, straight.loop.groups) {
            #expect(x.store.values.array == y.store.values.array, "\(x.name)")
        }
    }
}

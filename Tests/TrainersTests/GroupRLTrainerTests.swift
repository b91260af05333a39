// GRPO and RLOO on a small random model with a programmatic reward (the share of lowercase letters in the
// completion, ~10 % for the random model):
// the rollout log-probs equal the policy's re-score, the mean reward rises while the KL stays bounded, a very
// large β keeps the policy at the reference, and a resumed run equals an uninterrupted one bit for bit.

import Foundation
import Models
import Testing
import _TestSupport

@testable import Trainers

@Suite struct GroupRLTrainerTests {
    static let reward = RewardFunction(name: "lowercase_share") { r in
        r.completionIDs.isEmpty ? 0 : Double(r.completionIDs.filter { (97...122).contains($0) }.count) / 8
    }

    static func trainer(
        out: URL, data dir: URL, steps: Int, fullReference: Bool = false,
        configure: (inout GroupRLConfig) -> Void = { _ in }
    ) throws -> GroupRLTrainer {
        var c = GroupRLConfig()
        c.maxSteps = steps
        c.batchSize = 16
        c.numGenerations = 4
        c.maxCompletionLength = 8
        c.maxLength = 24
        c.learningRate = 3e-3
        c.loraRank = 8
        c.loraDropout = 0
        c.loggingSteps = 1
        c.saveSteps = 1000
        c.temperature = 0.9
        configure(&c)
        var config = RandomModel.config
        config.vocabularySize = 256
        let full = c.loraRank == 0
        let loaded = LoadedModel(
            model: RandomModel.make(trainable: full, config: config), tokenizer: try Fixtures.byteTokenizer(),
            chatTemplate: nil, source: dir)
        let reference =
            fullReference
            ? LoadedModel(
                model: RandomModel.make(config: config), tokenizer: loaded.tokenizer, chatTemplate: nil, source: dir)
            : nil
        let file = dir.appendingPathComponent("prompts.jsonl")
        try (0..<16).map { "{\"prompt\": \"say \($0 % 4) \"}" }.joined(separator: "\n")
            .write(to: file, atomically: true, encoding: .utf8)
        let data = try PromptData.prepare(
            training: c.training, maxCompletionLength: c.maxCompletionLength, tokenizer: loaded.tokenizer,
            chatTemplate: nil, file: file)
        return try GroupRLTrainer(
            config: c, model: loaded, reference: reference, data: data, reward: reward, outputDirectory: out,
            baseModel: "random")
    }

    static func run(_ t: GroupRLTrainer) throws -> [Metrics] {
        var steps: [Metrics] = []
        try t.train(onEvent: { event in
            if case let .step(_, _, m) = event { steps.append(m) }
            return .proceed
        })
        return steps
    }

    @Test(arguments: [GroupRLConfig.Estimator.grpo, .rloo])
    func rewardRisesWithBoundedKL(estimator: GroupRLConfig.Estimator) throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Self.trainer(out: dir.appendingPathComponent("out"), data: dir, steps: 60) {
            $0.estimator = estimator
            // GRPO's k3 term sits beside unit-scale advantages; RLOO subtracts β·Σ_t KL_t from rewards of ~0.1.
            $0.beta = estimator == .grpo ? 0.1 : 0.03
        }
        let steps = try Self.run(t)
        let first = steps.prefix(10).map { $0["reward"]! }.reduce(0, +) / 10
        let last = steps.suffix(10).map { $0["reward"]! }.reduce(0, +) / 10
        // 10 steps × 128 tokens: the standard error of each mean is ~0.01.
        #expect(last > first + 0.05, "\(estimator) mean reward \(steps.map { $0["reward"]! })")
        #expect(steps.allSatisfy { $0["kl"]! < 2 }, "per-token KL \(steps.map { $0["kl"]! })")
        // Sampling and the re-score agree (temperature 0.9, dropout off): same tokens, same distribution.
        #expect(steps.allSatisfy { $0["rollout/logprob_max_abs_diff"]! < 1e-4 })
    }

    /// Same run with β = 10⁻⁶ (no KL pressure) and β = 1000: the KL to the reference stays tiny with the large β.
    @Test func aVeryLargeBetaKeepsThePolicyAtTheReference() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var maxKL: [Double] = []
        for beta in [1e-6, 1000] {
            let t = try Self.trainer(out: dir.appendingPathComponent("out-\(beta)"), data: dir, steps: 20) {
                $0.beta = beta
            }
            maxKL.append(try Self.run(t).map { $0["kl"]! }.max()!)
        }
        // Adam's first step is sign-like whatever the gradient's scale (and the KL gradient is 0 at the
        // reference), so both runs leave the reference by the same first step; then β pulls the policy back.
        #expect(maxKL[1] < 0.05 && maxKL[1] < 0.2 * maxKL[0], "max KL with β 1e-6 and 1000: \(maxKL)")
    }

    /// A full fine-tune's reference is a frozen copy of the starting model: the KL grows from 0 as the weights move
    /// (before, the reference was the trained weights themselves and the KL stayed 0), and without a copy β > 0 is
    /// refused.
    @Test func aFullFineTuneMeasuresTheKLToAFrozenCopy() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let configure: (inout GroupRLConfig) -> Void = {
            $0.loraRank = 0
            $0.learningRate = 1e-3
            $0.beta = 0.05
        }
        #expect(throws: ConfigError.self) {
            try Self.trainer(out: dir.appendingPathComponent("none"), data: dir, steps: 4, configure: configure)
        }
        let t = try Self.trainer(
            out: dir.appendingPathComponent("out"), data: dir, steps: 4, fullReference: true, configure: configure)
        let steps = try Self.run(t)
        #expect(abs(steps[0]["kl"]!) < 1e-7, "the first step samples from the starting weights")
        #expect(steps[3]["kl"]! > 1e-4, "per-token KL \(steps.map { $0["kl"]! })")
        #expect(
            t.reference!.weights.values.array == RandomModel.make(config: t.loaded.model.config).weights.values.array)
    }

    @Test func resumeIsBitIdentical() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let straight = try Self.trainer(out: dir.appendingPathComponent("a"), data: dir, steps: 6) { $0.beta = 0.05 }
        try straight.train()
        let first = try Self.trainer(out: dir.appendingPathComponent("b"), data: dir, steps: 6) { $0.beta = 0.05 }
        try first.train(onEvent: { event in
            if case let .step(step, _, _) = event, step == 3 { return .stop }
            return .proceed
        })
        let resumed = try Self.trainer(out: dir.appendingPathComponent("b"), data: dir, steps: 6) { $0.beta = 0.05 }
        try resumed.train(resume: dir.appendingPathComponent("b"))
        for (x, y) in zip(resumed.loop.groups, straight.loop.groups) {
            #expect(x.store.values.array == y.store.values.array, "\(x.name)")
        }
    }

    /// Best-of-n keeps, for each prompt, the highest-reward of its n samples, reproducibly.
    @Test func bestOfNKeepsTheBestSample() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Self.trainer(out: dir.appendingPathComponent("out"), data: dir, steps: 1)
        func run() throws -> [BestOfN.Pick] {
            try BestOfN.run(
                prompts: Array(t.data.train.prefix(6)), model: t.loaded, reward: Self.reward, n: 8, maxNewTokens: 8,
                sampling: SamplingOptions(temperature: 1, seed: 3), promptsPerBatch: 4)
        }
        let picks = try run()
        #expect(picks.map(\.promptIndex) == Array(0..<6))
        #expect(picks.allSatisfy { $0.reward >= $0.meanReward })
        #expect(picks.contains { $0.reward > $0.meanReward }, "some group has unequal rewards")
        #expect(try run().map(\.completion.completionIDs) == picks.map(\.completion.completionIDs))
        for p in picks { #expect(try Self.reward([p.completion]) == [p.reward]) }
    }
}

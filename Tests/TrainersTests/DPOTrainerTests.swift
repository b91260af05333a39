// The DPO family on a small random model: the first step's DPO loss is exactly ln 2 (the policy starts as the
// reference), training (DPO, IPO, SimPO, ORPO) raises the chosen − rejected margin on the training pairs, and the
// reference log-probs are those of the bare base (no second model; none for the reference-free losses).

import Foundation
import Models
import TensorCore
import Testing
import _TestSupport

@testable import Trainers

@Suite struct DPOTrainerTests {
    static func trainer(
        out: URL, data dir: URL, loss: DPOLoss.Kind, steps: Int, configure: (inout DPOConfig) -> Void = { _ in }
    ) throws -> DPOTrainer {
        var c = DPOConfig()
        c.lossType = loss
        c.maxSteps = steps
        c.batchSize = 4
        c.learningRate = 1e-2
        c.loraRank = 4
        c.loraDropout = 0
        c.maxLength = 24
        c.loggingSteps = 1
        c.evalSteps = 0
        c.saveSteps = 1000
        configure(&c)
        var config = RandomModel.config
        config.vocabularySize = 256
        let loaded = LoadedModel(
            model: RandomModel.make(config: config), tokenizer: try Fixtures.byteTokenizer(), chatTemplate: nil,
            source: dir)
        let data = try PreferenceData.prepare(
            training: c.training, maxPromptLength: c.effectiveMaxPromptLength, tokenizer: loaded.tokenizer,
            chatTemplate: nil,
            trainFile: try RewardTrainerTests.pairsFile(count: 16, in: dir, name: "train.jsonl", seed: 0),
            evalFile: try RewardTrainerTests.pairsFile(count: 8, in: dir, name: "eval.jsonl", seed: 5))
        return try DPOTrainer(config: c, model: loaded, data: data, outputDirectory: out, baseModel: "random")
    }

    /// Above the pass budget a micro-batch of pairs runs as several passes with the same loss and adapter gradient
    /// (float rounding); ORPO, whose NLL is a mean over the micro-batch's chosen tokens, stays one pass.
    @Test func aMicroBatchAboveTheBudgetRunsInPassesWithTheSameGradient() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func run(_ loss: DPOLoss.Kind, budget: Int?, _ name: String) throws -> (DPOTrainer, MetricSums) {
            let t = try Self.trainer(out: dir.appendingPathComponent(name), data: dir, loss: loss, steps: 1) { c in
                if let budget { c.training.passBudgetBytes = budget }
            }
            for g in t.loop.groups { g.store.zeroGradients() }
            return (t, try t.accumulateGradients(step: 0, microBatches: 2, shard: .whole))
        }
        let (one, a) = try run(.sigmoid, budget: nil, "one")
        let (split, b) = try run(.sigmoid, budget: 1, "split")
        #expect(one.pairsPerPass == 4 && split.pairsPerPass == 1)
        #expect(try run(.orpo, budget: 1, "orpo").0.pairsPerPass == 4)
        try Fixtures.expectSameStep(
            (one.loop.groups, a), (split.loop.groups, b),
            metrics: ["loss", "rewards/margins", "logps/chosen", "logps/rejected"])
    }

    @Test(arguments: [DPOLoss.Kind.sigmoid, .ipo, .simpo, .orpo])
    func startsAtTheReferenceAndRaisesTheMargin(loss: DPOLoss.Kind) throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Self.trainer(out: dir.appendingPathComponent("out"), data: dir, loss: loss, steps: 20)
        let base = try t.sequenceLogProbs(t.data.train, adapter: nil)
        if loss.usesReference {
            #expect(
                base.map(\.chosen) == t.referenceTrain.map(\.chosen)
                    && base.map(\.rejected) == t.referenceTrain.map(\.rejected))
        } else {
            #expect(t.referenceTrain.isEmpty && t.referenceEval.isEmpty, "reference-free: nothing precomputed")
        }
        var losses: [Double] = [], margins: [Double] = []
        try t.train(onEvent: { event in
            if case let .step(_, _, m) = event {
                losses.append(m["loss"]!)
                margins.append(m["rewards/margins"]!)
            }
            return .proceed
        })
        // The reference was scored in other batches (other row counts and padding), so policy and reference
        // log-probs differ by summation order only (~1e-7 of a sequence log-prob); the loss function itself is
        // exactly ln 2 there (PreferenceLossTests).
        if loss == .sigmoid { #expect(abs(losses[0] - log(2.0)) <= 1e-6, "first-step DPO loss \(losses[0])") }
        if loss.usesReference { #expect(abs(margins[0]) <= 1e-6) }
        let policy = try t.sequenceLogProbs(t.data.train, adapter: t.adapter)
        // The mean log-ratio margin h starts at 0 (policy = reference) and grows.
        var h = 0.0
        for (p, r) in zip(policy, base) { h += (p.chosen - r.chosen) - (p.rejected - r.rejected) }
        h /= Double(policy.count)
        #expect(h > 1, "mean log-ratio margin after training: \(h)")
        #expect(losses.suffix(3).reduce(0, +) < losses.prefix(3).reduce(0, +), "loss \(losses)")
        if loss == .orpo {  // its NLL term raises the chosen completions' likelihood
            let gain = zip(policy, base).map { $0.chosen - $1.chosen }.reduce(0, +) / Double(policy.count)
            #expect(gain > 0, "mean chosen log-prob change under ORPO: \(gain)")
        }
    }
}

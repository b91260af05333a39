// Real model, real preferences: a LoRA reward model of SmolLM2-135M trained on 128 pairs of
// shared/data/hh_rlhf_helpful_train.jsonl ranks the chosen response above the rejected one on more than half of
// the first 200 pairs of the HH test file (CI-sized: ~2–4 minutes on two cores).

import Datasets
import Foundation
import Models
import Testing
import _SharedData

@testable import Trainers

@Suite struct SmolLM2RewardTests {
    @Test(SharedData.needs("data/hh_rlhf_helpful_train.jsonl", "data/hh_rlhf_helpful_test.jsonl"))
    func rewardModelBeatsChanceOnHeldOutHH() throws {
        let loaded = try ModelRegistry.load(ModelRegistry.defaultModelName)
        var c = RewardConfig()
        c.batchSize = 8
        c.maxLength = 192
        c.maxPromptLength = 32  // keep the responses (their length and ending carry much of the signal)
        c.learningRate = 5e-4
        c.warmupRatio = 0.1
        c.loraDropout = 0
        c.dataFraction = 128.0 / 3000  // 128 pairs, one epoch
        c.evalSteps = 0
        c.loggingSteps = 4
        c.saveSteps = 1000
        c.normalizationSamples = 64
        let data = try ComparisonData.prepare(
            training: c.training, maxPromptLength: c.effectiveMaxPromptLength, tokenizer: loaded.tokenizer,
            chatTemplate: loaded.chatTemplate, trainFile: SharedData.url("data/hh_rlhf_helpful_train.jsonl"),
            evalFile: nil)
        #expect(data.train.count == 128)
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trainer = try RewardTrainer(
            config: c, model: loaded, data: data, outputDirectory: dir, baseModel: ModelRegistry.defaultModelName)
        try trainer.train()
        let (test, _) = try ComparisonData.read(
            SharedData.url("data/hh_rlhf_helpful_test.jsonl"), maxLength: c.maxLength,
            maxPromptLength: c.effectiveMaxPromptLength, tokenizer: loaded.tokenizer,
            chatTemplate: loaded.chatTemplate)
        let result = try trainer.rewardModel.evaluate(Array(test.prefix(200)), batchSize: 8)
        #expect(result.pairs == 200)
        #expect(result.accuracy > 0.5, "HH test accuracy on 200 pairs: \(result.accuracy)")
        print("SmolLM2 reward model, 128 HH pairs: held-out accuracy \(result.accuracy) on 200 pairs")
    }
}

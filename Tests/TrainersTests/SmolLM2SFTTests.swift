// Real model, real data: a short LoRA SFT run of SmolLM2-135M on shared/data/alpaca_sft.jsonl lowers
// the held-out loss. Kept small for CI (a few steps of 4 × ≤128 tokens).

import Foundation
import Models
import Testing
import _SharedData

@testable import Trainers

@Suite struct SmolLM2SFTTests {
    @Test(SharedData.needs("data/alpaca_sft.jsonl")) func shortLoRARunLowersHeldOutLoss() throws {
        let loaded = try ModelRegistry.load(ModelRegistry.defaultModelName)
        var c = SFTConfig()
        c.maxSteps = 6
        c.batchSize = 4
        c.maxLength = 128
        c.learningRate = 1e-3
        c.loraDropout = 0
        c.warmupSteps = 1
        c.evalFraction = 0.006  // 16 held-out examples
        c.evalSteps = 0
        c.dataFraction = 0.02
        c.loggingSteps = 1
        c.saveSteps = 100
        let data = try SFTData.prepare(
            config: c, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate,
            trainFile: Fixtures.shared.appendingPathComponent("data/alpaca_sft.jsonl"), evalFile: nil)
        #expect(data.eval.count == 16)
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trainer = try SFTTrainer(
            config: c, model: loaded, data: data, outputDirectory: dir, baseModel: "smollm2-135m-instruct")
        let before = trainer.evaluate(adapter: trainer.adapter)["eval_loss"]!
        try trainer.train()
        let after = trainer.evaluate(adapter: trainer.adapter)["eval_loss"]!
        #expect(after < before - 0.02, "held-out loss \(before) → \(after)")
        let adapter = try trainer.exportFinal()
        #expect(
            FileManager.default.fileExists(atPath: adapter.appendingPathComponent("adapter_model.safetensors").path))
    }
}

// `rlhf demo`: the main job on the built-in default model — today the SFT stage of the pipeline:
// baseline answers and held-out loss, a LoRA SFT run on Alpaca-style data, the same answers and loss
// after, then the adapter exported (PEFT) and merged into a GGUF. Reward model, PPO and DPO stages
// join here as they land.

import ArgumentParser
import Datasets
import Foundation
import ModelExport
import Models
import Trainers

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the end-to-end demo on the default model.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "SFT data (JSONL); default ../shared/data/alpaca_sft.jsonl.") var data: String =
        "../shared/data/alpaca_sft.jsonl"
    @Option(help: "Output directory.") var out: String = "demo-output"
    @Option(help: "LoRA SFT optimizer steps.") var steps: Int = 30
    @Option(help: "New tokens per answer.") var maxNewTokens: Int = 48

    static let questions = [
        "What is the capital of France?", "Write a haiku about the sea.", "Give me two tips for sleeping well.",
    ]

    func run() throws {
        guard FileManager.default.fileExists(atPath: data) else {
            throw InputError(
                "\(data): no such file. Pass --data FILE.jsonl ({\"messages\": [...]} per line, TRL's SFT format).")
        }
        let outDir = URL(fileURLWithPath: out)
        let loaded = try modelOptions.load()
        note("== 1. Baseline (\(loaded.source.lastPathComponent))")
        try answer(loaded)

        note("== 2. LoRA SFT pilot: \(steps) steps on \(data)")
        var config = SFTConfig()
        config.maxSteps = steps
        config.batchSize = 4
        config.maxLength = 256
        config.learningRate = 2e-4
        config.groupByLength = true
        config.warmupSteps = 3
        config.evalFraction = 0.02
        config.evalSteps = 0
        config.loggingSteps = 5
        config.saveSteps = steps
        let prepared = try SFTData.prepare(
            config: config, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate,
            trainFile: URL(fileURLWithPath: data), evalFile: nil)
        prepared.report.forEach(note)
        let trainer = try SFTTrainer(
            config: config, model: loaded, data: prepared, outputDirectory: outDir.appendingPathComponent("sft"),
            baseModel: modelOptions.model)
        let before = trainer.evaluate(adapter: nil)
        Interrupt.install()
        let renderer = ProgressRenderer()
        let start = Date()
        var after: [String: Double] = [:]  // the trainer evaluates the held-out split after its last step
        try trainer.train(stopRequested: { Interrupt.isRequested }) { event in
            if case let .evaluation(_, metrics) = event { after = metrics }
            renderer.render(event)
            return .proceed
        }
        if renderer.isTerminal { note("") }
        if after.isEmpty { after = trainer.evaluate(adapter: trainer.adapter) }
        print(
            String(
                format: "held-out loss: %.4f → %.4f (token accuracy %.3f → %.3f) after %d steps in %.0f s",
                before["eval_loss"]!, after["eval_loss"]!, before["eval_mean_token_accuracy"]!,
                after["eval_mean_token_accuracy"]!,
                steps, Date().timeIntervalSince(start)))

        note("== 3. After SFT (adapter on)")
        try answer(loaded, adapter: trainer.adapter)

        note("== 4. Export")
        let adapterDir = try trainer.exportFinal()
        let gguf = outDir.appendingPathComponent("smollm2-sft-q8_0.gguf")
        try GGUFExport.saveMerged(
            model: loaded.model, adapter: trainer.adapter!, tokenizer: loaded.tokenizer,
            chatTemplate: loaded.chatTemplate?.source, type: .q8_0, name: "smollm2-sft", to: gguf, overwrite: true)
        print(
            "PEFT adapter: \(adapterDir.path)\nmerged GGUF (Q8_0): \(gguf.path)\nmetrics:"
                + " \(trainer.outputDirectory.appendingPathComponent(CheckpointLayout.metricsFile).path)"
        )
        print("Next stages (reward model, PPO, DPO) are not in this build yet.")
    }

    func answer(_ loaded: LoadedModel, adapter: LoRAAdapter? = nil) throws {
        let prompts = try Self.questions.map { try encodeChat(loaded, [Message(role: .user, content: $0)]) }
        let start = Date()
        let results = try loaded.model.generate(
            prompts: prompts.map { $0.map(Int32.init) }, adapter: adapter,
            options: GenerationOptions(maxNewTokens: maxNewTokens, stopTokenIDs: loaded.stopTokenIDs))
        let elapsed = Date().timeIntervalSince(start)
        for (q, r) in zip(Self.questions, results) {
            print("user: \(q)\nassistant: \(loaded.tokenizer.decode(r.tokens, skipSpecialTokens: true))\n")
        }
        let n = results.reduce(0) { $0 + $1.tokens.count }
        print(
            String(
                format: "[%d tokens in %.2f s, %.1f tok/s, batch %d]\n", n, elapsed, Double(n) / elapsed, results.count)
        )
    }
}

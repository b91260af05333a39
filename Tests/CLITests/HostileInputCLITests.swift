// Each class of out-of-range input a user can give the CLI ends in `Error: …` naming what to change and exit status
// 1 (or ArgumentParser's 64), never a trap (132), an abort (134) or a failed allocation: sizes whose products
// overflow, runs too large for memory, settings a model cannot take, edited checkpoints, non-finite numbers.

import Foundation
import Testing

@Suite(.serialized) struct HostileInputCLITests {
    static func expectError(
        _ args: [String], mentions: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let r = try CLI.run(args)
        #expect(r.status == 1 || r.status == 64, "status \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        for m in mentions {
            #expect(r.stderr.contains(m), "missing '\(m)' in: \(r.stderr)", sourceLocation: sourceLocation)
        }
    }

    static func fixture() throws -> (dir: URL, sft: URL, prompts: URL) {
        let dir = try PreferenceCLITests.directory()
        let sft = dir.appendingPathComponent("sft.jsonl"), prompts = dir.appendingPathComponent("prompts.jsonl")
        try PreferenceCLITests.write(
            (0..<4).map { "{\"prompt\": \"What is \($0) + 1?\", \"completion\": \"\($0 + 1).\"}" }, to: sft)
        try PreferenceCLITests.write((0..<4).map { "{\"prompt\": \"Say \($0).\"}" }, to: prompts)
        return (dir, sft, prompts)
    }

    @Test func sizesWhoseProductsWouldOverflowAreRefused() throws {
        let f = try Self.fixture()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let out = f.dir.appendingPathComponent("o").path
        let huge = "4611686018427387904"
        try Self.expectError(
            ["generate", "--prompt", "Hi", "--max-new-tokens", "9223372036854775807"], mentions: ["max_new_tokens"])
        try Self.expectError(
            ["sft", "--data", f.sft.path, "--out", out, "--epochs", huge], mentions: ["num_train_epochs"])
        try Self.expectError(
            ["sft", "--data", f.sft.path, "--out", out, "--batch-size", "1000000000000"], mentions: ["batch_size"])
        try Self.expectError(["sft", "--data", f.sft.path, "--out", out, "--lora-rank", huge], mentions: ["lora_rank"])
        let ppo = [
            "ppo", "--prompts", f.prompts.path, "--out", out, "--reward-fn", "length:3", "--response-length", "4",
        ]
        try Self.expectError(ppo + ["--num-mini-batches", huge], mentions: ["num_mini_batches"])
        try Self.expectError(ppo + ["--num-ppo-epochs", huge], mentions: ["num_ppo_epochs"])
        try Self.expectError(ppo + ["--iterations", huge], mentions: ["--iterations"])
        try Self.expectError(
            ["best-of-n", "--prompts", f.prompts.path, "--reward-fn", "length:3", "--n", "1000000000000"],
            mentions: ["--n"])
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func runsBeyondTheModelOrMemoryAreRefusedBeforeAllocating() throws {
        let f = try Self.fixture()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let out = f.dir.appendingPathComponent("o").path
        // A LoRA rank beyond SmolLM2's narrowest projection (192: k/v) adds nothing.
        try Self.expectError(
            ["sft", "--data", f.sft.path, "--out", out, "--lora-rank", "1000"], mentions: ["lora_rank", "192"])
        // 65,536 rows of 8,192 tokens: terabytes of activations even checkpointed.
        try Self.expectError(
            ["sft", "--data", f.sft.path, "--out", out, "--batch-size", "65536", "--max-length", "8192"],
            mentions: ["batch_size × max_length", "GiB", "--gradient-accumulation-steps"])
        try Self.expectError(
            ["sft", "--data", f.sft.path, "--out", out, "--learning-rate", "inf"],
            mentions: ["learning_rate", "finite"])
        try Self.expectError(
            ["sft", "--data", f.sft.path, "--out", out, "--set", "learning_rate=1e999"], mentions: ["learning_rate"])
        let demo = f.dir.appendingPathComponent("demo.json")
        try Data("{\"bon_max_n\": 1099511627776}".utf8).write(to: demo)
        try Self.expectError(["demo", "--config", demo.path, "--out", out], mentions: ["bon_max_n"])
        #expect(!FileManager.default.fileExists(atPath: out + "/checkpoint-1"))
    }

    /// Outputs that cannot be written, temperatures whose logits / T overflow Float32, and a demo too small for one
    /// PPO rollout batch are refused before anything loads or samples.
    @Test func unusableOutputsAndSettingsAreRefusedUpFront() throws {
        let f = try Self.fixture()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let file = f.dir.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        for trainer in [
            ["sft", "--data", f.sft.path], ["grpo", "--prompts", f.prompts.path, "--reward-fn", "length:3"],
        ] {
            try Self.expectError(trainer + ["--out", file.path], mentions: ["--out \(file.path) is a file"])
        }
        try Self.expectError(["demo", "--quick", "--out", file.path], mentions: ["is a file"])
        #expect(try Data(contentsOf: file) == Data("x".utf8))
        let bon = ["best-of-n", "--prompts", f.prompts.path, "--reward-fn", "length:3", "--n", "2"]
        try Self.expectError(bon + ["--out", f.dir.path], mentions: ["is a directory"])
        try Self.expectError(bon + ["--out", f.dir.path + "/missing/picks.jsonl"], mentions: ["does not exist"])
        try Self.expectError(bon + ["--temperature", "1e-45"], mentions: ["--temperature", "0.001"])
        try Self.expectError(
            ["generate", "--prompt", "Hi", "--temperature", "1e-45"], mentions: ["--temperature 0 (greedy) or ≥ 0.001"])
        try Self.expectError(
            [
                "grpo", "--prompts", f.prompts.path, "--reward-fn", "length:3", "--out", f.dir.path + "/g", "--set",
                "temperature=1e-9",
            ], mentions: ["temperature", "0.001"])
        let demo = f.dir.appendingPathComponent("demo.yaml")
        try Data("train_prompts: 2\nppo_batch_size: 8\n".utf8).write(to: demo)
        try Self.expectError(
            ["demo", "--config", demo.path, "--out", f.dir.path + "/d"], mentions: ["train_prompts", "ppo_batch_size"])
    }

    /// `rlhf chat`: a message beyond the model's context is reported and left out of the conversation, and the
    /// session answers the next one.
    @Test func aChatMessageBeyondTheContextIsReportedAndTheSessionGoesOn() throws {
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = ["chat", "--max-new-tokens", "4"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        (p.standardInput, p.standardOutput, p.standardError) = (input, output, errors)
        try p.run()
        let long = String(repeating: "word ", count: 12_000)  // ~12,000 tokens: beyond SmolLM2's 8,192
        input.fileHandleForWriting.write(Data((long + "\nHi\n/exit\n").utf8))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(err)")
        #expect(err.contains("That message was not added"), "\(err)")
        #expect(err.contains("tok/s]"), "the next message got no answer: \(err)")
        #expect(!out.isEmpty)
    }

    /// A checkpoint whose trainer_state.json was edited into impossible values is refused naming the file and the
    /// value; the run does not start.
    @Test func anEditedCheckpointIsRefused() throws {
        let f = try Self.fixture()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let out = f.dir.appendingPathComponent("o")
        let args = ["sft", "--data", f.sft.path, "--max-steps", "1", "--batch-size", "2", "--max-length", "32"]
        let first = try CLI.run(args + ["--lora-rank", "4", "--out", out.path])
        #expect(first.status == 0, "\(first.stderr)")
        let stateURL = out.appendingPathComponent("checkpoint-1/trainer_state.json")
        let original = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: stateURL)) as? [String: Any])
        for (key, value) in [
            ("rngState", [0, 0, 0, 0] as Any), ("step", -5 as Any),
            ("dataPosition", ["epoch": -3, "batch": 0, "seed": 0] as Any),
            ("optimizerSteps", ["adapter": Int.max] as Any),
        ] {
            var edited = original
            edited[key] = value
            try JSONSerialization.data(withJSONObject: edited).write(to: stateURL)
            try Self.expectError(
                args + ["--lora-rank", "4", "--out", f.dir.appendingPathComponent("r").path, "--resume", out.path],
                mentions: ["trainer_state.json", "impossible values"])
        }
    }
}

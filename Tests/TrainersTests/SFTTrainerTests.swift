// The SFT trainer on the tiny Llama: loss goes down (LoRA and full), the base stays frozen under LoRA,
// a run interrupted and resumed equals an uninterrupted one bit for bit, checkpoint errors are clear.

import Foundation
import ModelExport
import Models
import TensorCore
import Testing

@testable import Trainers

@Suite struct SFTTrainerTests {
    static func config(lora: Bool, steps: Int) -> SFTConfig {
        var c = SFTConfig()
        c.maxSteps = steps
        c.batchSize = 4
        c.gradientAccumulationSteps = 2
        c.learningRate = lora ? 3e-2 : 3e-3
        c.loraRank = lora ? 8 : 0
        c.loraDropout = 0.1
        c.maxLength = 32
        c.loggingSteps = 1
        c.saveSteps = 1000
        c.evalSteps = 0
        c.warmupSteps = 2
        return c
    }

    static func trainer(_ c: SFTConfig, out: URL, data dir: URL) throws -> SFTTrainer {
        let loaded = try Fixtures.tinyModel(trainable: c.loraRank == 0)
        let data = try SFTData.prepare(
            config: c, tokenizer: loaded.tokenizer, chatTemplate: nil,
            trainFile: try Fixtures.additionFile(count: 64, in: dir),
            evalFile: try Fixtures.additionFile(count: 16, in: dir, name: "eval.jsonl"))  // same distribution
        return try SFTTrainer(config: c, model: loaded, data: data, outputDirectory: out, baseModel: "tiny-llama")
    }

    @Test(arguments: [true, false])
    func lossGoesDown(lora: Bool) throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Self.trainer(Self.config(lora: lora, steps: 30), out: dir.appendingPathComponent("out"), data: dir)
        let before = t.evaluate(adapter: t.adapter)["eval_loss"]!
        let baseBefore = t.loaded.model.weights.values.array
        var losses: [Double] = []
        try t.train(onEvent: { event in
            if case let .step(_, _, m) = event { losses.append(m["loss"]!) }
            return .proceed
        })
        let after = t.evaluate(adapter: t.adapter)["eval_loss"]!
        #expect(after < before - 0.5, "eval loss \(before) → \(after)")
        #expect(losses.suffix(5).reduce(0, +) < losses.prefix(5).reduce(0, +))
        if lora { #expect(t.loaded.model.weights.values.array == baseBefore, "the frozen base must not change") }
        // metrics.jsonl holds TRL's metric names.
        let lines = try String(contentsOf: dir.appendingPathComponent("out/metrics.jsonl"), encoding: .utf8).split(
            separator: "\n")
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        for key in ["loss", "learning_rate", "grad_norm", "num_tokens", "mean_token_accuracy", "epoch"] {
            #expect(first[key] != nil, "\(key)")
        }
        #expect(lines.contains { $0.contains("eval_loss") })
    }

    /// N steps straight ≡ N/2 steps, stop (checkpoint), new process state, resume to N — bit for bit.
    @Test(arguments: [true, false])
    func resumeIsBitIdentical(lora: Bool) throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = Self.config(lora: lora, steps: 8)
        let straight = try Self.trainer(c, out: dir.appendingPathComponent("a"), data: dir)
        try straight.train()
        let first = try Self.trainer(c, out: dir.appendingPathComponent("b"), data: dir)
        try first.train(onEvent: { event in
            if case let .step(step, _, _) = event, step == 4 { return .stop }
            return .proceed
        })
        #expect(
            FileManager.default.fileExists(atPath: dir.appendingPathComponent("b/checkpoint-4/trainer_state.json").path)
        )
        let resumed = try Self.trainer(c, out: dir.appendingPathComponent("b"), data: dir)
        try resumed.train(resume: dir.appendingPathComponent("b"))
        #expect(resumed.loop.groups[0].store.values.array == straight.loop.groups[0].store.values.array)
        #expect(
            resumed.loop.optimizers[0].m.array == straight.loop.optimizers[0].m.array
                && resumed.loop.optimizers[0].step == 8)
    }

    @Test func checkpointErrorsAreClear() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = Self.config(lora: true, steps: 2)
        let t = try Self.trainer(c, out: dir.appendingPathComponent("out"), data: dir)
        #expect { try t.train(resume: dir.appendingPathComponent("nothing")) } throws: {
            "\($0)".contains("no checkpoint here")
        }
        try t.train()
        // A different config is refused with a hint.
        var other = c
        other.learningRate = 1
        let t2 = try Self.trainer(other, out: dir.appendingPathComponent("out2"), data: dir)
        #expect { try t2.train(resume: dir.appendingPathComponent("out")) } throws: { "\($0)".contains("--config") }
        // A checkpoint missing its optimizer state is reported as incomplete.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("out/checkpoint-2/optimizer.safetensors"))
        let t3 = try Self.trainer(c, out: dir.appendingPathComponent("out3"), data: dir)
        #expect { try t3.train(resume: dir.appendingPathComponent("out")) } throws: {
            "\($0)".contains("optimizer.safetensors")
        }
    }

    @Test func checkpointsArePrunedAndLatestPointsToNewest() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var c = Self.config(lora: true, steps: 6)
        c.saveSteps = 2
        c.saveTotalLimit = 2
        let out = dir.appendingPathComponent("out")
        let t = try Self.trainer(c, out: out, data: dir)
        try t.train()
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix("checkpoint-") }
            .sorted()
        #expect(names == ["checkpoint-4", "checkpoint-6"])
        #expect(try String(contentsOf: out.appendingPathComponent("latest"), encoding: .utf8) == "checkpoint-6")
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: out.path)).contains { $0.contains(".tmp") })
        // A LoRA checkpoint is a PEFT adapter directory: it loads back with the trained values.
        let fresh = try Fixtures.tinyModel(trainable: false).model
        let loaded = try PEFTAdapter.load(from: out.appendingPathComponent("checkpoint-6"), into: fresh, name: "check")
        #expect(loaded.store.values.array == t.loop.groups[0].store.values.array)
    }
}

@Suite struct SFTConfigTests {
    @Test func jsonAndYAMLDecodeOverDefaults() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = dir.appendingPathComponent("c.yaml")
        try "learning_rate: 0.001\nlora_rank: 0\nlr_scheduler_type: cosine\n".write(
            to: yaml, atomically: true, encoding: .utf8)
        let c = try SFTConfig.decode(try SFTConfig.load(file: yaml), source: yaml.path)
        #expect(
            c.learningRate == 0.001 && c.loraRank == 0 && c.lrSchedulerType == .cosine
                && c.batchSize == SFTConfig().batchSize)
        let json = dir.appendingPathComponent("c.json")
        try "{\"max_steps\": 7, \"seed\": 3}".write(to: json, atomically: true, encoding: .utf8)
        let j = try SFTConfig.decode(try SFTConfig.load(file: json), source: json.path)
        #expect(j.maxSteps == 7 && j.seed == 3)
        let o = try SFTConfig.decode(
            try SFTConfig.overrides(["batch_size=2", "lora_target_modules=[\"q_proj\"]"]), source: "--set")
        #expect(o.batchSize == 2 && o.loraTargetModules == ["q_proj"])
    }

    /// Yams trusts its input; the config reader must not: deep nesting (stack overflow), a list as a mapping key
    /// (a force unwrap, found by fuzzing), alias bombs, and values JSON cannot hold each get an error with the line.
    @Test func hostileYAMLIsRefusedWithTheLine() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func load(_ text: String) throws -> [String: Any] {
            let file = dir.appendingPathComponent("c.yaml")
            try text.write(to: file, atomically: true, encoding: .utf8)
            return try SFTConfig.load(file: file)
        }
        let n = 20_000
        let deepFlow = "seed: 1\nx: " + String(repeating: "[", count: n) + String(repeating: "]", count: n) + "\n"
        #expect { _ = try load(deepFlow) } throws: { "\($0)".contains("line 2: nested too deeply") }
        let deepBlock = (0..<200).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1\n"
        #expect { _ = try load(deepBlock) } throws: { "\($0)".contains("nested too deeply") }
        #expect { _ = try load("seed: 1\n? [a, b]\n: 2\n") } throws: {
            "\($0)".contains("line 2: a mapping key must be")
        }
        #expect { _ = try load("{[el\"label_smoothing_proj\"]}") } throws: { "\($0)".contains("mapping key") }
        var bomb = "a0: [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1..<8 {
            bomb += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        bomb = bomb.replacingOccurrences(of: "a0: [", with: "a0: &a0 [")
        #expect { _ = try load(bomb) } throws: { "\($0)".contains("once aliases are expanded") }
        #expect { _ = try load("learning_rate: .nan\n") } throws: {
            "\($0)".contains("line 1: '.nan' is not a finite number")
        }
        // Scalars resolve without Yams's integer constructors (a base-60 integer overflowed them: fuzzing).
        let numbers = try load(
            "seed: 9999999999999994509:8\nlearning_rate: 1e-4\nmax_steps: 12\nrun_name: '12'\nx: ~\n")
        #expect(numbers["seed"] as? String == "9999999999999994509:8" && numbers["learning_rate"] as? Double == 1e-4)
        #expect(numbers["max_steps"] as? Int == 12 && numbers["run_name"] as? String == "12" && numbers["x"] is NSNull)
        #expect { _ = try load("learning_rate: 1e999\n") } throws: { "\($0)".contains("beyond the range") }
        // Legitimate YAML still reads: nested lists, quotes, comments, dates kept as written.
        let ok = try load("# run\nlora_target_modules: [q_proj, \"v_proj\"]  # [sic]\nrun_name: 2026-12-05\nseed: 3\n")
        #expect(ok["lora_target_modules"] as? [String] == ["q_proj", "v_proj"])
        #expect(ok["run_name"] as? String == "2026-12-05" && ok["seed"] as? Int == 3)
    }

    @Test func unknownKeysAndBadValuesAreNamed() throws {
        #expect { _ = try SFTConfig.decode(["learning_rat": 1], source: "run.yaml") } throws: {
            "\($0)".contains("learning_rat") && "\($0)".contains("learning_rate")
        }
        #expect { _ = try SFTConfig.decode(["batch_size": "many"], source: "run.yaml") } throws: {
            "\($0)".contains("batch_size")
        }
        var c = SFTConfig()
        c.dataFraction = 0
        #expect { try c.validate() } throws: { "\($0)".contains("data_fraction") }
    }
}

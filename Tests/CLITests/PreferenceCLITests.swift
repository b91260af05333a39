// `rlhf reward`, `eval-reward`, `score` and `dpo` as a user runs them on the built-in model: a K-wise reward
// model trains, evaluates and scores with its stored normalisation; DPO-family and KTO runs save an adapter; bad
// comparisons and a cDPO without smoothing are clear errors that write nothing.

import Foundation
import Testing
import _SharedData

@Suite(.serialized) struct PreferenceCLITests {
    static func directory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlhf-pref-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func write(_ lines: [String], to url: URL) throws {
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    static let fast = [
        "--max-steps", "2", "--batch-size", "2", "--max-length", "48", "--lora-rank", "4", "--set", "logging_steps=1",
    ]

    @Test func rankingsTrainEvaluateAndScore() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("ranked.jsonl")
        try Self.write(
            (0..<6).map {
                "{\"prompt\": \"What is \($0) + 1?\", \"completions\": [\"\($0 + 1).\", \"No idea.\", \"Maybe 7.\"], "
                    + "\"ranking\": [0, 2, 1]}"
            }, to: data)
        let out = dir.appendingPathComponent("rm")
        let train = try CLI.run(["reward", "--data", data.path, "--out", out.path] + Self.fast)
        #expect(train.status == 0, "\(train.stderr)")
        let card = out.appendingPathComponent("adapter/reward_model.json")
        let saved = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: card)) as? [String: Any], "reward_model.json")
        #expect(saved["tokenizer_fingerprint"] is String && saved["normalization"] is [String: Any])

        let eval = try CLI.json(["eval-reward", "--reward", out.path, "--data", data.path, "--json"])
        #expect(eval["pairs"] as? Int == 18, "6 rankings of 3: 3 pairs each")
        #expect((eval["accuracy"] as? Double).map { (0...1).contains($0) } == true)
        // On a bf16 base the same model scores within bf16 rounding of fp32 (~1e-2 relative).
        let eval16 = try CLI.json(["eval-reward", "--reward", out.path, "--data", data.path, "--json", "--bf16"])
        let (m32, m16) = (try #require(eval["mean_margin"] as? Double), try #require(eval16["mean_margin"] as? Double))
        #expect(eval16["pairs"] as? Int == 18 && abs(m16 - m32) <= 0.05 * max(1, abs(m32)), "\(m16) vs \(m32)")
        let score = try CLI.json(["score", "--reward", out.path, "--prompt", "Hi", "--completion", "Hello!", "--json"])
        #expect(score["score"] is Double && score["normalized_score"] is Double)
    }

    @Test func dpoFamilyAndKTORunsSaveAnAdapter() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pairs = dir.appendingPathComponent("pairs.jsonl"), unpaired = dir.appendingPathComponent("kto.jsonl")
        try Self.write(
            (0..<4).map { "{\"prompt\": \"Say \($0).\", \"chosen\": \"\($0)\", \"rejected\": \"No.\"}" }, to: pairs)
        try Self.write(
            (0..<4).map { "{\"prompt\": \"Say \($0).\", \"completion\": \"\($0)\", \"label\": \($0 % 2 == 0)}" },
            to: unpaired)
        for (loss, file) in [("orpo", pairs), ("kto", unpaired)] {
            let out = dir.appendingPathComponent(loss)
            let r = try CLI.run(["dpo", "--loss", loss, "--data", file.path, "--out", out.path] + Self.fast)
            #expect(r.status == 0, "\(loss): \(r.stderr)")
            #expect(
                FileManager.default.fileExists(atPath: out.appendingPathComponent("adapter/adapter_config.json").path))
        }
        let cdpo = try CLI.run(
            ["dpo", "--loss", "cdpo", "--data", pairs.path, "--out", dir.appendingPathComponent("c").path] + Self.fast)
        #expect(cdpo.status != 0 && cdpo.stderr.contains("label_smoothing"), "\(cdpo.stderr)")
    }

    @Test func badRankingIsAnErrorNamingLineAndField() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("bad.jsonl")
        try Self.write(
            [
                "{\"prompt\": \"a\", \"completions\": [\"x\", \"y\"], \"ranking\": [1, 0]}",
                "{\"prompt\": \"b\", \"completions\": [\"x\", \"y\", \"z\"], \"ranking\": [2, 2, 0]}",
            ], to: data)
        let out = dir.appendingPathComponent("rm")
        let r = try CLI.run(["reward", "--data", data.path, "--out", out.path] + Self.fast)
        #expect(r.status == 1 && r.stderr.contains("line 2") && r.stderr.contains("ranking"), "\(r.stderr)")
        #expect(r.stderr.contains("permutation"))
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }
}

@Suite(.serialized) struct RLCLITests {
    /// GRPO and best-of-n on the built-in model with a built-in reward; a reward spec that is neither is refused.
    @Test func grpoAndBestOfNRunWithABuiltInReward() throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = dir.appendingPathComponent("prompts.jsonl")
        try PreferenceCLITests.write(
            (0..<4).map { "{\"prompt\": [{\"role\": \"user\", \"content\": \"Name a colour (\($0)).\"}]}" }, to: prompts
        )
        let out = dir.appendingPathComponent("grpo")
        let grpo = try CLI.run([
            "grpo", "--prompts", prompts.path, "--reward-fn", "length:4", "--out", out.path, "--num-generations", "2",
            "--max-completion-length", "8", "--beta", "0.04", "--batch-size", "4", "--max-steps", "2",
            "--max-length", "96", "--lora-rank", "4", "--set", "logging_steps=1",
        ])
        #expect(grpo.status == 0, "\(grpo.stderr)")
        let metrics = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        for key in ["\"reward\"", "\"kl\"", "\"completions/mean_length\"", "\"rollout/logprob_max_abs_diff\""] {
            #expect(metrics.contains(key), "\(key)")
        }
        let picks = dir.appendingPathComponent("picks.jsonl")
        let summary = try CLI.json([
            "best-of-n", "--prompts", prompts.path, "--reward-fn", "regex:[Bb]lue", "--n", "3", "--max-new-tokens",
            "8", "--out", picks.path, "--json",
        ])
        #expect(summary["prompts"] as? Int == 4)
        let lines = try String(contentsOf: picks, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4 && lines.allSatisfy { $0.contains("\"completion\"") })
        let bad = try CLI.run(["best-of-n", "--prompts", prompts.path, "--reward-fn", "loud", "--n", "2"])
        #expect(bad.status != 0 && bad.stderr.contains("length:N"), "\(bad.stderr)")
    }
}

extension RLCLITests {
    /// PPO as a user runs it: a reward model from `rlhf reward`, then `rlhf ppo` with the critic from it (LoRA, one
    /// shared base) for two iterations, and again from the first one's checkpoint to the same adapter; a full fine-tune with a built-in reward; a bad prompt line is an
    /// error naming it.
    /// PPO's rollouts and updates run on every frozen-base form the CLI offers (LoRA on the GGUF's quantised
    /// weights and on a bf16 base), with the rollout/re-score check logged.
    @Test(arguments: ["--quantized", "--bf16"]) func ppoRunsOnEveryFrozenBaseForm(_ form: String) throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = dir.appendingPathComponent("prompts.jsonl")
        try PreferenceCLITests.write((0..<4).map { "{\"prompt\": \"Count to \($0 + 2).\"}" }, to: prompts)
        let out = dir.appendingPathComponent("ppo")
        let r = try CLI.run([
            "ppo", form, "--prompts", prompts.path, "--out", out.path, "--reward-fn", "length:3", "--response-length",
            "4", "--batch-size", "2", "--num-mini-batches", "2", "--num-ppo-epochs", "1", "--iterations", "1",
            "--max-length", "64", "--lora-rank", "4", "--set", "logging_steps=1",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let metrics = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        #expect(metrics.contains("\"rollout/logprob_max_abs_diff\""), "\(metrics)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("adapter/adapter_config.json").path))
    }

    @Test func ppoTrainsAgainstARewardModelAndResumes() throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pairs = dir.appendingPathComponent("pairs.jsonl"), prompts = dir.appendingPathComponent("prompts.jsonl")
        try PreferenceCLITests.write(
            (0..<4).map { "{\"prompt\": \"Say \($0).\", \"chosen\": \"\($0)\", \"rejected\": \"No.\"}" }, to: pairs)
        try PreferenceCLITests.write((0..<4).map { "{\"prompt\": \"Count to \($0 + 2).\"}" }, to: prompts)
        let rm = dir.appendingPathComponent("rm")
        let reward = try CLI.run(["reward", "--data", pairs.path, "--out", rm.path] + PreferenceCLITests.fast)
        #expect(reward.status == 0, "\(reward.stderr)")
        let out = dir.appendingPathComponent("ppo")
        let common = [
            "ppo", "--prompts", prompts.path, "--out", out.path, "--reward", rm.path, "--response-length", "6",
            "--batch-size", "2", "--num-mini-batches", "2", "--num-ppo-epochs", "2", "--max-length", "64",
            "--lora-rank", "4", "--set", "logging_steps=1", "--set", "log_samples_every=1",
        ]
        let first = try CLI.run(common + ["--iterations", "2", "--set", "save_steps=4"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("critic from the reward model"), "\(first.stderr)")
        let weights = out.appendingPathComponent("adapter/adapter_model.safetensors")
        let straight = try Data(contentsOf: weights)
        // Resumed from the end of the first iteration (its rollouts, controller and RNG): the same final adapter.
        let resumed = try CLI.run(common + ["--resume", out.appendingPathComponent("checkpoint-4").path])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try Data(contentsOf: weights) == straight)
        let metrics = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        for key in [
            "objective/kl", "objective/scores", "objective/rlhf_reward", "objective/kl_coef", "policy/clipfrac_avg",
            "val/clipfrac_avg", "policy/approxkl_avg", "loss/value_avg", "rollout/logprob_max_abs_diff",
        ] {
            #expect(metrics.contains("\"\(key)\""), "\(key)")
        }
        let samples = try String(contentsOf: out.appendingPathComponent("samples.jsonl"), encoding: .utf8)
        #expect(samples.split(separator: "\n").count == 4 * 3, "2 iterations, then the second again")
        for path in ["adapter/adapter_config.json", "critic/adapter_config.json", "checkpoint-8/ppo_state.json"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(path).path), "\(path)")
        }

        let full = try CLI.run([
            "ppo", "--prompts", prompts.path, "--out", dir.appendingPathComponent("full").path, "--reward-fn",
            "length:3", "--response-length", "4", "--batch-size", "2", "--num-mini-batches", "2", "--iterations",
            "1", "--max-length", "64", "--lora-rank", "0", "--num-ppo-epochs", "1",
        ])
        #expect(full.status == 0, "\(full.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("full/model/config.json").path))
        // The reference keeps the GGUF's quantised blocks, the values the dense policy starts from: the first
        // iteration's KL is float rounding, not a difference of models.
        let line = try #require(
            try String(contentsOf: dir.appendingPathComponent("full/metrics.jsonl"), encoding: .utf8)
                .split(separator: "\n").first)
        let firstStep = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        let kl = try #require(firstStep?["objective/kl"] as? Double)
        #expect(abs(kl) < 1e-3, "\(kl)")

        try "{\"prompt\": \"ok\"}\n{\"prompt\": 3}\n".write(to: prompts, atomically: true, encoding: .utf8)
        let bad = try CLI.run([
            "ppo", "--prompts", prompts.path, "--out", dir.appendingPathComponent("bad").path, "--reward-fn",
            "length:3",
        ])
        #expect(bad.status == 1 && bad.stderr.contains("line 2") && bad.stderr.contains("prompt"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("bad").path))
    }
}

@Suite(.serialized) struct DemoCLITests {
    static func report(_ dir: URL) throws -> [String: Any] {
        try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("report.json")))
                as? [String: Any])
    }

    /// The report without timings and memory (the only figures a seed does not fix).
    static func figures(_ report: [String: Any]) throws -> Data {
        var r = report
        r["timings"] = nil
        return try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys])
    }

    /// `rlhf demo --quick` needs nothing beside the clone: every stage runs on the built-in task, the report is
    /// written, a finished demo is not redone, and a demo killed after a stage resumes there with the same numbers.
    @Test func quickDemoRunsEveryStageAndResumesWithTheSameNumbers() throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("demo")
        let r = try CLI.run(["demo", "--quick", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("[9/9] Report") && r.stdout.contains("win-rate vs SFT"), "\(r.stdout)")
        let report = try Self.report(out)
        for stage in ["baseline", "sft", "pairs", "reward", "ppo", "bestOfN", "dpo", "grpo"] {
            #expect(report[stage] != nil, "\(stage) missing from report.json")
        }
        let ppo = try #require(report["ppo"] as? [String: Any])
        let points = try #require(ppo["points"] as? [[String: Any]])
        // The first iteration samples from the starting policy: its KL is 0 up to the rounding between the
        // KV-cached sampling and the batched reference pass (PPO's own drift warning is at 1e-3 per token).
        #expect(points.count == 3 && (points[0]["kl"] as? Double).map { abs($0) < 1e-3 } == true, "\(points)")
        // Held-out points: the SFT policy at d = 0, after iterations 1 and 2, and the final policy, each at the KL
        // of its own samples.
        let heldOut = try #require(ppo["heldOut"] as? [[String: Any]])
        #expect(heldOut.map { $0["x"] as? Double } == [0, 1, 2, 3] && heldOut[0]["d"] as? Double == 0, "\(heldOut)")
        #expect(heldOut.dropFirst().allSatisfy { ($0["kl"] as? Double).map { $0.isFinite && $0 > -0.1 } == true })
        let final = try #require((ppo["policy"] as? [String: Any])?["sampled"] as? [String: Any])
        #expect(heldOut[3]["gold"] as? Double == final["meanGold"] as? Double)
        // Policies are also scored by their samples (eval_samples per prompt).
        let config = try #require(report["config"] as? [String: Any])
        let sftSampled = try #require(
            ((report["sft"] as? [String: Any])?["policy"] as? [String: Any])?["sampled"] as? [String: Any])
        let replies = try #require(config["eval_prompts"] as? Int) * #require(config["eval_samples"] as? Int)
        #expect(replies > 8 && (sftSampled["gold"] as? [Double])?.count == replies)
        let bon = try #require((report["bestOfN"] as? [String: Any])?["points"] as? [[String: Any]])
        #expect(bon.map { $0["x"] as? Double } == [1, 2, 4, 8])
        for path in [
            "report.html", "data/pairs.jsonl", "sft/adapter", "reward/adapter/reward_model.json", "ppo/adapter",
            "ppo/critic", "ppo/rlhfkit-demo-ppo-q8_0.gguf",
        ] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(path).path), "\(path)")
        }
        // The real report renders (the synthetic one is checked, or reported skipped, in PipelineTests).
        if Browser.path != nil {
            let png = dir.appendingPathComponent("report.png")
            try Browser.screenshot(out.appendingPathComponent("report.html"), to: png)
            let counts = try Browser.colourCounts(png, ["#1f77b4", "#d62728"])
            #expect(counts.values.allSatisfy { $0 > 100 }, "\(counts)")
        }
        // Killed after the DPO stage: the rerun keeps stages 1–7 and redoes GRPO with the same result.
        let grpoRecord = out.appendingPathComponent("stages/8-grpo.json")
        try FileManager.default.removeItem(at: grpoRecord)
        let again = try CLI.run(["demo", "--quick", "--out", out.path])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("done in an earlier run (7-dpo.json)"), "\(again.stderr)")
        #expect(try Self.figures(Self.report(out)) == Self.figures(report))
        // A new PPO setting in the same directory redoes PPO alone (and the report); the other stages are kept.
        let betaFile = dir.appendingPathComponent("beta.json")
        try Data(#"{"ppo_kl_coef": 0.5}"#.utf8).write(to: betaFile)
        let beta = try CLI.run(["demo", "--quick", "--out", out.path, "--config", betaFile.path])
        #expect(beta.status == 0, "\(beta.stderr)")
        #expect(beta.stderr.contains("other settings for this stage"), "\(beta.stderr)")
        let skipped = beta.stderr.components(separatedBy: "); skipped").count - 1
        #expect(skipped == 7, "\(beta.stderr)")
        let changed = try Self.report(out)
        #expect(try Self.figures(changed) != Self.figures(report))
        #expect(
            (changed["dpo"] as? [String: Any]).map { NSDictionary(dictionary: $0) }
                == (report["dpo"] as? [String: Any]).map { NSDictionary(dictionary: $0) })
    }

    /// `rlhf sweep` runs the demo per value (tiny sizes here), the later variants reusing the stages the setting
    /// does not touch, and ranks them in sweep.json.
    @Test func sweepRanksVariantsAndReusesUntouchedStages() throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("tiny.json")
        try Data(
            #"""
            {"train_prompts": 16, "eval_prompts": 4, "ood_prompts": 4, "max_new_tokens": 8, "sft_steps": 2,
             "reward_steps": 2, "ppo_iterations": 2, "bon_prompts": 2, "bon_max_n": 4, "dpo_steps": 1, "grpo_steps": 1}
            """#.utf8
        ).write(to: config)
        let out = dir.appendingPathComponent("sweep")
        let r = try CLI.run([
            "sweep", "--quick", "--config", config.path, "--key", "ppo_kl_coef", "--values", "0.001,0.5",
            "--data-fraction", "1", "--out", out.path,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let sweep = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("sweep.json")))
                as? [String: Any])
        let variants = try #require(sweep["variants"] as? [[String: Any]])
        #expect(Set(variants.compactMap { $0["value"] as? String }) == ["0.001", "0.5"])
        // The second variant redid PPO only: 7 stages skipped.
        let second = r.stderr.components(separatedBy: "ppo_kl_coef = 0.5").last ?? ""
        #expect(second.components(separatedBy: "); skipped").count - 1 == 7, "\(r.stderr)")
        for v in ["0.001", "0.5"] {
            #expect(
                FileManager.default.fileExists(atPath: out.appendingPathComponent("ppo_kl_coef=\(v)/report.html").path))
        }
        let bad = try CLI.run(["sweep", "--key", "ppo_kl", "--values", "1,2", "--out", out.path])
        #expect(bad.status != 0 && bad.stderr.contains("ppo_kl") && bad.stderr.contains("ppo_kl_coef"), "\(bad.stderr)")
    }

    @Test func badConfigNamesTheKeyAndWritesNothing() throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (text, key) in [(#"{"ppo_iterations": "x"}"#, "ppo_iterations"), (#"{"gold": 1}"#, "gold")] {
            let config = dir.appendingPathComponent("demo.json")
            try Data(text.utf8).write(to: config)
            let out = dir.appendingPathComponent("out")
            let r = try CLI.run(["demo", "--quick", "--config", config.path, "--out", out.path])
            #expect(r.status != 0 && r.stderr.contains(key) && r.stderr.contains(config.path), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out.path))
        }
    }
}

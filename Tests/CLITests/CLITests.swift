// The `rlhf` binary's machine-readable forms, run as a user would (out of process), against the
// golden files: other tools script these commands.

import Foundation
import Testing
import _SharedData

enum CLI {
    /// `<build dir>/rlhf`, next to the test bundle.
    static var binary: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("rlhf").path) && dir.path != "/" {
            dir.deleteLastPathComponent()
        }
        return dir.appendingPathComponent("rlhf")
    }

    static let shared = SharedData.root

    struct Result { let status: Int32; let stdout: String; let stderr: String }

    static func run(_ args: [String], environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(
            status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: e, as: UTF8.self))
    }

    static func json(_ args: [String]) throws -> [String: Any] {
        let r = try run(args)
        #expect(r.status == 0, "rlhf \(args.joined(separator: " ")) failed: \(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }
}

@Suite(.serialized) struct CLITests {
    @Test(SharedData.needs("reference/tokenizer_golden.json")) func tokenizeMatchesGolden() throws {
        let golden =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: CLI.shared.appendingPathComponent("reference/tokenizer_golden.json")))
            as! [String: Any]
        let cases = (golden["cases"] as! [[String: Any]]).prefix(6)
        for c in cases {
            let out = try CLI.json(["tokenize", "--text", c["text"] as! String, "--json"])
            #expect(out["ids"] as? [Int] == c["ids"] as? [Int])
            #expect(out["tokens"] as? [String] == c["tokens"] as? [String])
        }
    }

    @Test(SharedData.needs("reference/logits_golden.json")) func logprobsMatchesGolden() throws {
        let golden =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: CLI.shared.appendingPathComponent("reference/logits_golden.json")))
            as! [String: Any]
        let c = (golden["cases"] as! [[String: Any]])[0]
        let out = try CLI.json([
            "logprobs", "--prompt", c["prompt_text"] as! String, "--completion", c["continuation_text"] as! String,
            "--json",
        ])
        let expected = (c["continuation_logprob_sum"] as! NSNumber).doubleValue
        #expect(abs((out["sum"] as! NSNumber).doubleValue - expected) <= 1e-3)
        #expect((out["token_logprobs"] as! [Any]).count == (c["continuation_token_logprobs"] as! [Any]).count)
    }

    @Test(SharedData.needs("reference/generation_golden.json")) func generateChatJSONMatchesGreedyGolden() throws {
        let golden =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: CLI.shared.appendingPathComponent("reference/generation_golden.json")))
            as! [String: Any]
        let c = (golden["cases"] as! [[String: Any]])[0]
        let chat = FileManager.default.temporaryDirectory.appendingPathComponent(
            "rlhf-cli-chat-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: c["messages"] as! [Any]).write(to: chat)
        defer { try? FileManager.default.removeItem(at: chat) }
        let out = try CLI.json([
            "generate", "--chat", chat.path, "--max-new-tokens", "32", "--temperature", "0", "--json",
        ])
        #expect(out["ids"] as? [Int] == c["generated_ids"] as? [Int])
        #expect(out["text"] as? String == c["generated_text"] as? String)
        #expect((out["token_logprobs"] as? [Any])?.count == (c["generated_ids"] as? [Any])?.count)
        #expect(out["finish_reason"] as? String == ((c["stopped_on_eos"] as? Bool) == true ? "stop" : "length"))
    }

    /// generate, chat and logprobs keep a GGUF's quantised weights by default (the file's exact values, fp32
    /// products); `--dense` dequantises them to Float32 first: the same tokens and log-probs within fp32
    /// summation-order noise, each matching the golden sum; `--dense` with `--quantized` is refused.
    @Test(SharedData.needs("reference/logits_golden.json")) func quantisedByDefaultForInferenceDenseOnRequest() throws {
        let golden =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: CLI.shared.appendingPathComponent("reference/logits_golden.json")))
            as! [String: Any]
        let c = (golden["cases"] as! [[String: Any]])[1]
        let expected = (c["continuation_logprob_sum"] as! NSNumber).doubleValue
        var sums: [Double] = []
        for extra in [[], ["--dense"]] {
            let r = try CLI.run(
                [
                    "logprobs", "--prompt", c["prompt_text"] as! String, "--completion",
                    c["continuation_text"] as! String, "--json",
                ] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stderr.contains("kept quantised") == extra.isEmpty, "load line: \(r.stderr)")
            let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            sums.append((out["sum"] as! NSNumber).doubleValue)
            #expect(abs(sums.last! - expected) <= 1e-3)
        }
        #expect(abs(sums[0] - sums[1]) <= 1e-4)
        let ids = try ["", "--dense"].map { flag in
            try CLI.json(
                ["generate", "--prompt-ids", "1,9690,198,2683,359", "--max-new-tokens", "8", "--json"]
                    + (flag.isEmpty ? [] : [flag]))["ids"] as? [Int]
        }
        #expect(ids[0] != nil && ids[0] == ids[1])
        let both = try CLI.run(["generate", "--dense", "--quantized", "--prompt", "hi"])
        #expect(both.status != 0 && both.stderr.contains("--dense") && both.stderr.contains("--quantized"))
    }

    /// `--bf16`: same JSON form; the continuation's log-prob moves only by bf16's precision (BF16BaseTests
    /// measures ~0.02 per token); the frozen-base checks name the flags.
    @Test(SharedData.needs("reference/logits_golden.json")) func bf16GenerateAndLogprobs() throws {
        let golden =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: CLI.shared.appendingPathComponent("reference/logits_golden.json")))
            as! [String: Any]
        let c = (golden["cases"] as! [[String: Any]])[0]
        let lp = try CLI.json([
            "logprobs", "--bf16", "--prompt", c["prompt_text"] as! String, "--completion",
            c["continuation_text"] as! String, "--json",
        ])
        let tokens = (c["continuation_token_logprobs"] as! [Any]).count
        let expected = (c["continuation_logprob_sum"] as! NSNumber).doubleValue
        #expect(abs((lp["sum"] as! NSNumber).doubleValue - expected) <= 0.05 * Double(tokens))
        let gen = try CLI.json(["generate", "--bf16", "--prompt-ids", "1,9690,198", "--max-new-tokens", "6", "--json"])
        #expect((gen["ids"] as? [Int])?.count == 6 && (gen["token_logprobs"] as? [Any])?.count == 6)
        let both = try CLI.run(["generate", "--bf16", "--quantized", "--prompt", "hi"])
        #expect(both.status != 0 && both.stderr.contains("--bf16") && both.stderr.contains("--quantized"))
    }

    @Test func promptIDsSeededSamplingIsReproducible() throws {
        let args = [
            "generate", "--prompt-ids", "1,9690,198", "--max-new-tokens", "8", "--temperature", "0.8", "--top-k", "40",
            "--top-p", "0.9", "--seed", "7", "--json",
        ]
        let a = try CLI.json(args), b = try CLI.json(args)
        #expect(a["ids"] as? [Int] == b["ids"] as? [Int])
        #expect((a["ids"] as? [Int])?.count == 8)
    }

    @Test func badInputGivesActionableErrors() throws {
        let r1 = try CLI.run(["generate", "--prompt-ids", "1,2,99999", "--max-new-tokens", "2"])
        #expect(r1.status != 0 && r1.stderr.contains("99999"))
        let r2 = try CLI.run(["generate", "--model", "/nonexistent/model.gguf", "--prompt", "hi"])
        #expect(r2.status != 0 && r2.stderr.contains("smollm2-135m-instruct"))
        let garbage = FileManager.default.temporaryDirectory.appendingPathComponent(
            "rlhf-garbage-\(UUID().uuidString).gguf")
        try Data("not a model".utf8).write(to: garbage)
        defer { try? FileManager.default.removeItem(at: garbage) }
        let r3 = try CLI.run(["generate", "--model", garbage.path, "--prompt", "hi"])
        #expect(r3.status != 0 && r3.stderr.contains(garbage.lastPathComponent) && r3.stderr.contains("GGUF"))
        let r4 = try CLI.run(["generate", "--prompt", "a", "--chat", "b"])
        #expect(r4.status != 0 && r4.stderr.contains("exactly one"))
    }

    @Test func inspectShowsQuantTypes() throws {
        let r = try CLI.run(["inspect"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("Q4_1") && r.stdout.contains("Q8_0") && r.stdout.contains("layers 30"))
    }

    /// More positions than SmolLM2's 8,192 is a clear error naming the limit and the option to lower, never
    /// a crash (exit status 1, not a signal).
    @Test func contextOverflowIsAnErrorNotACrash() throws {
        let ids = [String](repeating: "1", count: 8190).joined(separator: ",")
        let gen = try CLI.run(["generate", "--prompt-ids", ids, "--max-new-tokens", "10"])
        #expect(
            gen.status == 1 && gen.stderr.contains("8192") && gen.stderr.contains("--max-new-tokens to at most 2"),
            "\(gen.stderr)")

        let long = String(repeating: "hello ", count: 9000)
        let lp = try CLI.run(["logprobs", "--prompt", long, "--completion", " world"])
        #expect(lp.status == 1 && lp.stderr.contains("8192"), "\(lp.stderr)")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlhf-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("sft.jsonl")
        try (0..<4).map { "{\"prompt\": \"Count to \($0).\", \"completion\": \" \($0)\"}" }.joined(separator: "\n")
            .write(to: data, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out")
        let sft = try CLI.run([
            "sft", "--data", data.path, "--out", out.path, "--max-length", "9000", "--max-steps", "1",
        ])
        #expect(sft.status == 1 && sft.stderr.contains("max_length") && sft.stderr.contains("8192"), "\(sft.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint-1").path))
    }
}

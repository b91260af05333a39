// `mpirun -np 2 rlhf …` as a user launches a data-parallel run (Open MPI on loopback): SFT, the preference trainers,
// GRPO, RLOO and PPO (sharded rollouts) give the weights of a one-process run with the same global batch, a run
// resumes with another rank count, ranks started with different settings are refused, commands that are not
// trainers refuse mpirun, and a rank killed mid-run ends the job instead of leaving the others waiting.

import Foundation
import Testing

enum MPI {
    /// `mpirun` on PATH (scripts/bootstrap.sh installs Open MPI when it is missing and it can).
    static let mpirun: String? = {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(dir)/mpirun"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }()

    /// scripts/mpi-two-hosts.sh when this machine can make network namespaces (root and `ip netns`), else nil.
    static let twoHosts: String? = {
        guard mpirun != nil, getuid() == 0 else { return nil }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/mpi-two-hosts.sh").path
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/bin/sh")
        probe.arguments = ["-c", "ip netns add rlhf-probe-$$ && ip netns del rlhf-probe-$$"]
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return nil }
        probe.waitUntilExit()
        return probe.terminationStatus == 0 ? script : nil
    }()

    /// Runs `mpirun -np 2 <command…>` (or an MPMD line when `second` is given; or, with `twoHosts`, the two ranks in
    /// two network namespaces talking TCP), with a deadline.
    static func run(
        _ args: [String], second: [String]? = nil, twoHosts: Bool = false, deadline: TimeInterval = 300
    ) throws -> CLI.Result {
        let p = Process()
        // One thread per rank, as the one-process runs compared with them (a product split over threads may sum in
        // another order).
        var environment = ProcessInfo.processInfo.environment
        environment["RLHF_NUM_THREADS"] = "1"
        p.environment = environment
        if twoHosts {
            p.executableURL = URL(fileURLWithPath: Self.twoHosts!)
            p.arguments = args
        } else {
            p.executableURL = URL(fileURLWithPath: mpirun!)
            var line = (getuid() == 0 ? ["--allow-run-as-root"] : []) + ["-x", "RLHF_NUM_THREADS"]
            if let second {
                line += ["-np", "1"] + args + [":", "-np", "1"] + second
            } else {
                line += ["-np", "2"] + args
            }
            p.arguments = line
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let timer = DispatchWorkItem { p.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + deadline, execute: timer)
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        timer.cancel()
        return CLI.Result(
            status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: e, as: UTF8.self))
    }
}

@Suite(
    .serialized,
    .enabled(if: MPI.mpirun != nil, "Open MPI's mpirun is not installed (scripts/bootstrap.sh installs it as root)"))
struct DistributedCLITests {
    static let rlhf = CLI.binary.path
    static let small = ["--max-length", "48", "--lora-rank", "4", "--set", "logging_steps=1"]

    static func weights(_ dir: URL, _ part: String = "adapter") throws -> [String: [Float]] {
        let data = try Data(contentsOf: dir.appendingPathComponent("\(part)/adapter_model.safetensors"))
        let n = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try #require(
            try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any])
        var out: [String: [Float]] = [:]
        for (name, info) in header where name != "__metadata__" {
            let offsets = try #require((info as? [String: Any])?["data_offsets"] as? [Int])
            let bytes = data.subdata(in: (8 + n + offsets[0])..<(8 + n + offsets[1]))
            out[name] = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return out
    }

    static func losses(_ dir: URL) throws -> [Double] {
        try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            .compactMap {
                (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["loss"] as? Double
            }
    }

    /// `args` as one process (one thread) into `dir/one` and on two ranks into `dir/two`, each expected to succeed.
    static func runOnOneAndTwo(_ args: [String], in dir: URL, twoHosts: Bool = false) throws -> (one: URL, two: URL) {
        let one = dir.appendingPathComponent("one"), two = dir.appendingPathComponent("two")
        let single = try CLI.run(args + ["--out", one.path], environment: ["RLHF_NUM_THREADS": "1"])
        #expect(single.status == 0, "\(single.stderr)")
        let parallel = try MPI.run([rlhf] + args + ["--out", two.path], twoHosts: twoHosts)
        #expect(parallel.status == 0, "\(parallel.stderr)")
        return (one, two)
    }

    /// metrics.jsonl's records without the wall-clock figure.
    static func records(_ dir: URL) throws -> [[String: Double]] {
        try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            .map {
                var r = try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
                r["tokens_per_second"] = nil
                return r.compactMapValues { $0 as? Double }
            }
    }

    /// Largest |a − b| over the tensors of two adapters, and the largest |a|.
    static func difference(_ a: [String: [Float]], _ b: [String: [Float]]) -> (worst: Float, scale: Float) {
        var worst: Float = 0, scale: Float = 0
        for (k, x) in a {
            for (u, v) in zip(x, b[k] ?? []) { worst = max(worst, abs(u - v)); scale = max(scale, abs(u)) }
        }
        return (worst, scale)
    }

    static func prompts(_ dir: URL) throws -> URL {
        let url = dir.appendingPathComponent("prompts.jsonl")
        try PreferenceCLITests.write((0..<8).map { "{\"prompt\": \"Count to \($0 + 2).\"}" }, to: url)
        return url
    }

    static func sftData(_ dir: URL) throws -> URL {
        let url = dir.appendingPathComponent("sft.jsonl")
        try PreferenceCLITests.write(
            (0..<8).map { "{\"prompt\": \"What is \($0) + 1?\", \"completion\": \"\($0 + 1).\"}" }, to: url)
        return url
    }

    /// Two ranks, each one micro-batch of a two-micro-batch step: the all-reduced gradient is the one-process sum
    /// (two terms add the same in any order; one thread per process on both sides), so the adapter matches bit for
    /// bit; resuming the one-process run's checkpoint on two ranks lands on the same weights too.
    @Test func sftOnTwoRanksMatchesOneProcessAndResumesAcrossRankCounts() throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try Self.sftData(dir)
        let args =
            [
                "sft", "--data", data.path, "--max-steps", "3", "--batch-size", "2", "--set",
                "gradient_accumulation_steps=2",
                "--set", "save_steps=1",
            ] + Self.small
        let (one, two) = try Self.runOnOneAndTwo(args, in: dir)
        #expect(try Self.weights(two) == Self.weights(one))
        #expect(try Self.losses(two) == Self.losses(one) && Self.losses(one).count == 3)
        // Rank 1 writes nothing of its own: one metrics file with one line per step.
        let resumed = dir.appendingPathComponent("resumed")
        let r = try MPI.run(
            [Self.rlhf] + args + ["--out", resumed.path, "--resume", one.appendingPathComponent("checkpoint-2").path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.weights(resumed) == Self.weights(one))
    }

    /// The same SFT run with its two ranks on two virtual hosts (network namespaces joined by a veth pair): Open MPI
    /// starts the second rank through its remote agent and the ranks exchange over TCP, as on two machines.
    @Test(
        .enabled(
            if: MPI.twoHosts != nil,
            "needs root and network namespaces (ip netns) to put the ranks on two virtual hosts"))
    func sftOverTCPBetweenTwoHostsMatchesOneProcess() throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let args =
            [
                "sft", "--data", try Self.sftData(dir).path, "--max-steps", "3", "--batch-size", "2", "--set",
                "gradient_accumulation_steps=2",
            ] + Self.small
        let (one, two) = try Self.runOnOneAndTwo(args, in: dir, twoHosts: true)
        #expect(try Self.weights(two) == Self.weights(one))
    }

    /// The preference trainers with four micro-batches a step over two ranks: each rank sums two, so the total is
    /// added in another order than one process's; the weights (adapter, and the reward model's head) agree to float
    /// rounding.
    @Test(arguments: [["dpo"], ["dpo", "--loss", "kto"], ["reward"]])
    func preferenceTrainersOnTwoRanksMatchOneProcess(command: [String]) throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data.jsonl")
        try PreferenceCLITests.write(
            (0..<8).map {
                command.contains("kto")
                    ? "{\"prompt\": \"Say \($0).\", \"completion\": \"\($0 % 3 == 0 ? "No." : "\($0)")\", \"label\": \($0 % 3 != 0)}"
                    : "{\"prompt\": \"Say \($0).\", \"chosen\": \"\($0)\", \"rejected\": \"No.\"}"
            }, to: data)
        let args =
            command + [
                "--data", data.path, "--set", "gradient_accumulation_steps=4", "--max-steps", "2",
            ]
            + ["--batch-size", command.contains("kto") ? "2" : "1"] + Self.small  // KTO needs two rows a batch
        let (one, two) = try Self.runOnOneAndTwo(args, in: dir)
        let a = try Self.weights(one), b = try Self.weights(two)
        #expect(a.keys.sorted() == b.keys.sorted() && !a.isEmpty)
        let (worst, scale) = Self.difference(a, b)
        #expect(worst <= 1e-6 * max(scale, 1), "largest difference \(worst) (largest weight \(scale))")
        let (l1, l2) = (try Self.losses(one), try Self.losses(two))
        #expect(l1.count == 2 && l2.count == 2)
        for (x, y) in zip(l1, l2) { #expect(abs(x - y) <= 1e-6 * max(1, abs(x))) }
    }

    /// GRPO and RLOO: each micro-batch holds whole groups and is sampled with its own seed, so with two micro-batches a
    /// step each rank samples, scores and backpropagates one and the all-reduced gradient is the one-process sum of
    /// two terms: weights and every metric match bit for bit. The reward varies (a vowel-pair regex), so the
    /// advantages and gradients are not zero.
    @Test(arguments: ["grpo", "rloo"]) func groupRLOnTwoRanksMatchesOneProcess(command: String) throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = [
            command, "--prompts", try Self.prompts(dir).path, "--reward-fn", "regex:[aeiou]{2}", "--num-generations",
            "2", "--max-completion-length", "8", "--beta", "0.04", "--batch-size", "2", "--set",
            "gradient_accumulation_steps=2", "--max-steps", "3", "--max-length", "96", "--lora-rank", "4", "--set",
            "logging_steps=1",
        ]
        let (one, two) = try Self.runOnOneAndTwo(args, in: dir)
        #expect(try Self.weights(two) == Self.weights(one))
        let (r1, r2) = (try Self.records(one), try Self.records(two))
        #expect(r1 == r2 && r1.count == 3)
        #expect(r1.contains { ($0["grad_norm"] ?? 0) > 0 && ($0["reward_std"] ?? 0) > 0 }, "\(r1)")
    }

    /// PPO with sharded rollouts: four chunks of one completion (`local_rollout_forward_batch_size`), two per rank,
    /// gathered so that KL, the adaptive controller, GAE and the advantage whitening see the global batch; then two
    /// micro-batches a step, one per rank. The first iteration's rollout metrics equal one process's exactly; the
    /// policy and critic agree to float rounding (the value head adds its rows' gradients into the accumulated
    /// buffer, so one process sums in another order). Rank 0 alone writes samples.jsonl; the one-process run's
    /// mid-iteration checkpoint resumes on two ranks to the same policy.
    @Test func ppoWithShardedRolloutsMatchesOneProcessAndResumesAcrossRankCounts() throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = [
            "ppo", "--prompts", try Self.prompts(dir).path, "--reward-fn", "length:3", "--response-length", "4",
            "--batch-size", "1", "--set", "gradient_accumulation_steps=2", "--num-mini-batches", "2",
            "--num-ppo-epochs", "2", "--iterations", "2", "--max-length", "64", "--lora-rank", "4", "--kl-target",
            "0.1", "--set", "logging_steps=1", "--set", "save_steps=3", "--set", "local_rollout_forward_batch_size=1",
        ]
        let (one, two) = try Self.runOnOneAndTwo(args, in: dir)
        for part in ["adapter", "critic"] {
            let a = try Self.weights(one, part), b = try Self.weights(two, part)
            let (worst, scale) = Self.difference(a, b)
            #expect(a.keys.sorted() == b.keys.sorted() && !a.isEmpty)
            #expect(worst <= 1e-6 * max(scale, 1), "\(part): largest difference \(worst) (largest weight \(scale))")
        }
        let (r1, r2) = (try Self.records(one), try Self.records(two))
        #expect(r1.count == 8 && r2.count == 8)
        let objective = r1[0].filter { $0.key.hasPrefix("objective/") }
        #expect(objective.count >= 5 && objective == r2[0].filter { $0.key.hasPrefix("objective/") })
        // Later steps run on weights that differ in the last bits: the values agree to 1e-6; quantities made of
        // log-probs (the KL, the policy loss) to 2e-5, about 20 fp32 ulps of a log-prob near −8.
        for (a, b) in zip(r1, r2) {
            for (key, tolerance) in [
                ("loss/value_avg", 1e-6), ("val/vpred", 1e-6), ("objective/kl_coef", 1e-6), ("objective/kl", 2e-5),
                ("loss/policy_avg", 2e-5),
            ] where a[key] != nil {
                #expect(abs(a[key]! - (b[key] ?? .nan)) <= tolerance, "\(key): \(a) vs \(b)")
            }
        }
        let samples = try String(contentsOf: two.appendingPathComponent("samples.jsonl"), encoding: .utf8)
        #expect(samples.split(separator: "\n").count == 4)
        let resumed = dir.appendingPathComponent("resumed")
        let r = try MPI.run(
            [Self.rlhf] + args + ["--out", resumed.path, "--resume", one.appendingPathComponent("checkpoint-6").path])
        #expect(r.status == 0, "\(r.stderr)")
        let (worst, scale) = Self.difference(try Self.weights(one), try Self.weights(resumed))
        #expect(worst <= 1e-6 * max(scale, 1), "resumed: largest difference \(worst)")
    }

    /// Commands other than the trainers would run N copies writing the same files: refused under mpirun.
    @Test func otherCommandsRefuseMPIRun() throws {
        let r = try MPI.run([Self.rlhf, "best-of-n", "--prompts", "/nonexistent.jsonl", "--reward-fn", "length:3"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("run `rlhf best-of-n` as one process, without mpirun"), "\(r.stderr)")
    }

    /// Ranks given different settings would wait for each other at different steps: refused on every rank.
    @Test func ranksWithDifferentSettingsAreRefused() throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let args =
            [Self.rlhf, "sft", "--data", try Self.sftData(dir).path, "--out", dir.appendingPathComponent("o").path]
            + PreferenceCLITests.fast + ["--set", "gradient_accumulation_steps=2"]
        let r = try MPI.run(args, second: args + ["--set", "learning_rate=0.001"], deadline: 120)
        #expect(r.status != 0)
        #expect(r.stderr.contains("the ranks disagree: the training config"), "\(r.stderr)")
    }

    /// A rank killed mid-run (SIGKILL) ends the job within seconds; rank 0 does not write a final adapter.
    @Test func aKilledRankEndsTheJob() throws {
        let dir = try PreferenceCLITests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("o")
        let command =
            ([Self.rlhf, "sft", "--data", try Self.sftData(dir).path, "--out", out.path, "--max-steps", "500"]
            + ["--batch-size", "2", "--set", "gradient_accumulation_steps=2"] + Self.small).map { "'\($0)'" }.joined(
                separator: " ")
        let start = Date()
        let r = try MPI.run(
            ["sh", "-c", "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then (sleep 3; kill -9 $$) & fi; exec \(command)"],
            deadline: 120)
        #expect(r.status != 0)
        #expect(Date().timeIntervalSince(start) < 100, "the job waited for the killed rank")
        #expect(r.stderr.contains("rank 1") && r.stderr.contains("signal 9"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("adapter").path))
    }
}

// Flags shared by every trainer, applied over the config file and `--set` overrides (precedence:
// defaults < --config < --set < these flags). Help texts read defaults from the config types.

import ArgumentParser
import Distributed
import Foundation
import ModelExport
import Synchronization
import Trainers

struct TrainingFlags: ParsableArguments {
    @Option(help: "A JSON or YAML config file (partial; unknown keys are errors).") var config: String?
    @Option(name: .customLong("set"), help: "Override a config key: --set key=value (repeatable).") var overrides:
        [String] = []
    @Option(help: "LoRA rank; 0 = full fine-tune (default \(SFTConfig().loraRank)).") var loraRank: Int?
    @Option(help: "Stop after this many optimizer steps.") var maxSteps: Int?
    @Option(help: "Epochs over the training data (default \(SFTConfig().numTrainEpochs)).") var epochs: Int?
    @Option(help: "Sequences per micro-batch (default \(SFTConfig().batchSize)).") var batchSize: Int?
    @Option(help: "Micro-batches per optimizer step (default \(SFTConfig().gradientAccumulationSteps)).")
    var gradientAccumulationSteps: Int?
    @Option(help: "Truncate examples to this many tokens (default \(SFTConfig().maxLength)).") var maxLength: Int?
    @Option(help: "Peak learning rate (default \(SFTConfig().learningRate)).") var learningRate: Float?
    @Option(help: "Random seed (default \(SFTConfig().seed)).") var seed: UInt64?
    @Option(help: "Train on a seeded sample of this fraction of the data, e.g. 0.1 for a pilot run.") var dataFraction:
        Float?
    @Flag(help: "Skip invalid records (reported with counts) instead of stopping at the first.") var skipInvalid = false
    @Flag(help: "Skip an optimizer step whose gradient is NaN/Inf (counted in skipped_steps) instead of stopping.")
    var skipNonfiniteSteps = false
    @Flag(help: "Recompute activations in backward to save memory.") var activationCheckpointing = false
    @Option(help: "Continue from a checkpoint directory (or an output directory's latest checkpoint).") var resume:
        String?

    /// The merged override object (config file, then --set, then flags).
    func object<C: PartialConfig>(for _: C.Type) throws -> [String: Any] {
        var object: [String: Any] = [:]
        if let config { object = try C.load(file: URL(fileURLWithPath: config)) }
        for (k, v) in try C.overrides(overrides) { object[k] = v }
        let flags: [String: Any?] = [
            "lora_rank": loraRank, "max_steps": maxSteps, "num_train_epochs": epochs, "batch_size": batchSize,
            "gradient_accumulation_steps": gradientAccumulationSteps, "max_length": maxLength,
            "learning_rate": learningRate, "seed": seed, "data_fraction": dataFraction,
            "skip_invalid": skipInvalid ? true : nil, "skip_nonfinite_steps": skipNonfiniteSteps ? true : nil,
            "activation_checkpointing": activationCheckpointing ? true : nil,
        ]
        for (k, v) in flags { if let v { object[k] = v } }
        return object
    }
}

/// Ctrl-C once: finish the current step, save a checkpoint and exit. Twice: exit now.
enum Interrupt {
    static let requested = Atomic<Int>(0)

    static func install() {
        signal(SIGINT) { _ in
            if Interrupt.requested.add(1, ordering: .relaxed).newValue >= 2 { _exit(130) }
            let msg = "\nInterrupted: saving a checkpoint after this step (Ctrl-C again to quit now).\n"
            _ = msg.withCString { write(2, $0, strlen($0)) }
        }
    }

    static var isRequested: Bool { requested.load(ordering: .relaxed) > 0 }
}

/// Renders trainer events: a progress line on a terminal, one line per log step otherwise.
final class ProgressRenderer {
    let start = Date()
    let isTerminal = isatty(2) == 1
    /// The latest value of every metric seen (PPO logs its rollout metrics once per iteration).
    var latest: Metrics = [:]

    func render(_ event: TrainerEvent) {
        switch event {
        case let .step(step, total, logged):
            latest.merge(logged) { $1 }
            let m = latest
            let elapsed = Date().timeIntervalSince(start)
            let eta = elapsed / Double(max(step, 1)) * Double(total - step)
            let width = 24, done = Int(Double(width) * Double(step) / Double(max(total, 1)))
            let bar = String(repeating: "=", count: done) + String(repeating: " ", count: width - done)
            // The trainer's headline metric: token or pair accuracy, or (RL) the mean reward or score, KL (β) and clip
            // fraction.
            var headline = ""
            if let acc = m["mean_token_accuracy"] ?? m["accuracy"] ?? m["rewards/accuracies"] {
                headline = String(format: "acc %.3f", acc)
            } else if let score = m["objective/scores"] {
                headline = String(
                    format: "score %.3f  kl %.3f  β %.3g  clip %.3f", score, m["objective/kl"] ?? 0,
                    m["objective/kl_coef"] ?? 0, m["policy/clipfrac_avg"] ?? 0)
            } else if let reward = m["reward"] {
                headline = String(format: "reward %.3f  kl %.4f  clip %.3f", reward, m["kl"] ?? 0, m["clip_ratio"] ?? 0)
            }
            let line = String(
                format: "step %d/%d [%@] loss %.4f  %@  lr %.2e  |g| %.3f  %.0f tok/s  ETA %@",
                step, total, bar, m["loss"] ?? .nan, headline, m["learning_rate"] ?? .nan,
                m["grad_norm"] ?? .nan, m["tokens_per_second"] ?? 0, Self.clock(eta))
            FileHandle.standardError.write(Data((isTerminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
        case let .evaluation(step, m):
            // Every eval_… metric the trainer reported (SFT: loss and token accuracy; reward: loss, accuracy, margin).
            let shown = m.keys.filter { $0.hasPrefix("eval_") }.sorted().map { String(format: "%@ %.4f", $0, m[$0]!) }
            note((isTerminal ? "\n" : "") + "eval @ step \(step): " + shown.joined(separator: "  "))
        case let .checkpointSaved(step, dir):
            note((isTerminal ? "\n" : "") + "checkpoint @ step \(step): \(dir.path)")
        case let .message(s): note(s)
        }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.isFinite ? seconds : 0)
        return String(format: "%02d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
    }
}

extension TrainingFlags {
    /// The run's config: defaults < `--config` < `--set` < flags < `extra`; when resuming, the checkpoint's
    /// saved config wins instead (architecture and data order must match). Validated.
    func resolve<C: TrainerConfig>(_: C.Type, extra: [String: Any] = [:]) throws -> C {
        var object = try self.object(for: C.self)
        for (k, v) in extra { object[k] = v }
        if let resume {
            let dir = try Checkpoint.resolve(URL(fileURLWithPath: resume))
            object = try C.load(file: dir.appendingPathComponent(CheckpointLayout.configFile))
            note("Resuming from \(dir.path) with its saved config.")
        }
        let resolved = try C.decode(object, source: config ?? "flags")
        try resolved.validate()
        return resolved
    }

    /// Runs `trainer` with the progress renderer (Ctrl-C: checkpoint, then stop), then prints where `export`
    /// saved the result.
    func run<T: Trainer>(_ trainer: T, export: () throws -> URL) throws {
        note(
            "\(trainer.totalSteps) optimizer steps; metrics → "
                + trainer.outputDirectory.appendingPathComponent(CheckpointLayout.metricsFile).path)
        Interrupt.install()
        let renderer = ProgressRenderer()
        try trainer.train(resume: resume.map { URL(fileURLWithPath: $0) }, stopRequested: { Interrupt.isRequested }) {
            renderer.render($0)
            return .proceed
        }
        if renderer.isTerminal { note("") }
        if World.launchedRank == 0 { note("Saved \(try export().path)") }  // rank 0 writes the outputs
    }
}

/// `--out` of a run: a directory to create, or an earlier run's. Refused before anything loads when it names a file.
func checkOutputDirectory(_ path: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue {
        throw ValidationError(
            "--out \(path) is a file: pass a directory (a new one, or an earlier run's with --resume to continue it).")
    }
}

// `rlhf demo`: the seed's whole pipeline on the built-in default model with nothing beside the clone (the stages,
// task and gold judge are in the Pipeline target): progress for every stage with an overall counter, resume from
// the last finished stage, report.html + report.json, and a closing summary.

import ArgumentParser
import Foundation
import Models
import Pipeline
import Trainers

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the whole pipeline on the default model and a built-in task with a gold judge.",
        discussion: """
            Stages: baseline → LoRA SFT → pairs of SFT samples labelled by simulated annotators (Bradley–Terry \
            noise and flips) → proxy reward model → PPO against the proxy (proxy and gold reward against \
            √KL) → best-of-n (n = 1…64) → DPO on the same pairs → GRPO → report (OUT/report.html, \
            OUT/report.json). Each finished stage is kept in OUT/stages/: run the same command again to resume \
            an interrupted demo. --config FILE (JSON or YAML) overrides the sizes and hyper-parameters by key \
            (see DemoConfig: train_prompts, ppo_iterations, ppo_kl_coef, annotator_flip_rate, …).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Output directory.") var out: String = "demo-output"
    @Option(help: "Seed of the built-in task and of every stage.") var seed: UInt64?
    @Flag(help: "The same stages at toy sizes (about two minutes).") var quick = false
    @Option(help: "A JSON or YAML file of demo settings (keys as in report.json's config).") var config: String?
    @Option(help: "Pilot mode: the share of the training prompts every stage uses, e.g. 0.1.")
    var dataFraction: Double?
    @Flag(help: "Start over instead of resuming the stages finished in --out.") var fresh = false

    /// The demo merges the SFT adapter into the base, which needs dense weights.
    static func checkDense(_ options: ModelOptions) throws {
        guard !options.quantized && !options.bf16 else {
            throw ValidationError(
                "The demo merges the SFT adapter into the base: load it dense (no --quantized/--bf16).")
        }
    }

    /// Stage lines with the overall counter, one progress bar per stage (a renderer remembers the metrics it has
    /// seen), sampling progress, Ctrl-C.
    static func terminalObserver() -> DemoObserver {
        var renderer = ProgressRenderer()
        var observer = DemoObserver()
        observer.stage = { i, n, title in
            if renderer.isTerminal { note("") }
            note("[\(i)/\(n)] \(title)")
            renderer = ProgressRenderer()
        }
        observer.log = { note("  " + $0) }
        observer.trainerEvent = { renderer.render($0) }
        observer.sampling = { done, total in
            let line = "  sampling \(done)/\(total) replies"
            FileHandle.standardError.write(Data((renderer.isTerminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
        }
        observer.stopRequested = { Interrupt.isRequested }
        return observer
    }

    func resolvedConfig() throws -> DemoConfig {
        var c = quick ? DemoConfig.quick : DemoConfig()
        if let config { c = try DemoConfig.load(file: URL(fileURLWithPath: config), over: c) }
        if let seed { c.seed = seed }
        if let dataFraction { c.dataFraction = dataFraction }
        try c.validate(source: "flags")
        return c
    }

    func run() throws {
        try checkOutputDirectory(out)
        let c = try resolvedConfig()
        try Self.checkDense(modelOptions)
        let loaded = try modelOptions.load(trainable: false)
        Interrupt.install()
        let observer = Self.terminalObserver()
        let start = Date()
        let pipeline = try DemoPipeline(
            config: c, base: loaded, baseModel: modelOptions.model, out: URL(fileURLWithPath: out),
            observer: observer)
        let report = try pipeline.run(fresh: fresh)
        if isatty(2) == 1 { note("") }
        print(report.summary.joined(separator: "\n"))
        print(
            String(
                format: "report: %@/report.html (figures: report.json); %.0f s", out, Date().timeIntervalSince(start)))
    }
}

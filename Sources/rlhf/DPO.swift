// `rlhf dpo`: direct preference optimisation (and IPO, cDPO, robust DPO, hinge, SimPO) on preference pairs.

import ArgumentParser
import Foundation
import ModelExport
import Models
import Trainers

struct DPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo",
        abstract:
            "Preference optimisation on TRL's {\"prompt\", \"chosen\", \"rejected\"} JSONL (reference = the starting model)."
    )

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Training pairs (JSONL).") var data: String
    @Option(help: "Evaluation pairs (JSONL); default: hold out eval_fraction of the training data.") var evalData:
        String?
    @Option(help: "Output directory (metrics.jsonl, checkpoints, the final adapter or model).") var out: String
    @Option(
        help:
            "sigmoid (DPO), robust, ipo, hinge or simpo (default \(DPOConfig().lossType.rawValue)); cDPO = sigmoid with --set label_smoothing=ε."
    )
    var loss: String?
    @Option(help: "β (default \(DPOConfig().beta)).") var beta: Double?
    @OptionGroup var training: TrainingFlags

    func validate() throws {
        if modelOptions.adapter != nil {
            throw ValidationError("dpo starts a new adapter; to continue a run pass --resume DIR.")
        }
        if let loss, DPOLoss.Kind(rawValue: loss) == nil {
            throw ValidationError(
                "--loss \(loss): use one of \(DPOLoss.Kind.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
    }

    func run() throws {
        let outDir = URL(fileURLWithPath: out)
        var object = try training.object(for: DPOConfig.self)
        if let loss { object["loss_type"] = loss }
        if let beta { object["beta"] = beta }
        if let resume = training.resume {
            let dir = try Checkpoint.resolve(URL(fileURLWithPath: resume))
            object = try DPOConfig.load(file: dir.appendingPathComponent(CheckpointLayout.configFile))
            note("Resuming from \(dir.path) with its saved config.")
        }
        let config = try DPOConfig.decode(object, source: training.config ?? "flags")
        try config.validate()
        let loaded = try modelOptions.load(trainable: config.loraRank == 0)
        let prepared = try PreferenceData.prepare(
            training: config.training, maxPromptLength: config.effectiveMaxPromptLength,
            tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate,
            trainFile: URL(fileURLWithPath: data),
            evalFile: evalData.map { URL(fileURLWithPath: $0) })
        prepared.report.forEach(note)
        note(
            "Reference log-probs of \(prepared.train.count + prepared.eval.count) pairs (once, through the starting model)…"
        )
        let trainer = try DPOTrainer(
            config: config, model: loaded, data: prepared, outputDirectory: outDir, baseModel: modelOptions.model)
        note(
            "\(config.lossType.rawValue), β \(config.beta): \(trainer.trainableParameterCount) trainable parameters; "
                + "\(trainer.totalSteps) optimizer steps; metrics → \(outDir.appendingPathComponent(CheckpointLayout.metricsFile).path)"
        )
        Interrupt.install()
        let renderer = ProgressRenderer()
        try trainer.train(
            resume: training.resume.map { URL(fileURLWithPath: $0) }, stopRequested: { Interrupt.isRequested }
        ) {
            renderer.render($0)
            return .proceed
        }
        if renderer.isTerminal { note("") }
        note("Saved \(try trainer.exportFinal().path)")
    }
}

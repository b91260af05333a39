// `rlhf dpo`: direct preference optimisation (and IPO, cDPO, robust DPO, hinge, SimPO, ORPO) on preference pairs,
// and KTO on labelled completions.

import ArgumentParser
import Foundation
import ModelExport
import Models
import Trainers

struct DPO: ParsableCommand, DataParallelCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo",
        abstract:
            "Preference optimisation on TRL's {\"prompt\", \"chosen\", \"rejected\"} JSONL, or KTO on "
            + "{\"prompt\", \"completion\", \"label\"} (reference = the starting model)."
    )

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Training pairs (JSONL; KTO: labelled completions).") var data: String
    @Option(help: "Evaluation data (JSONL); default: hold out eval_fraction of the training data.") var evalData:
        String?
    @Option(help: "Output directory (metrics.jsonl, checkpoints, the final adapter or model).") var out: String
    @Option(
        help: ArgumentHelp(
            "dpo (= sigmoid), cdpo (needs --set label_smoothing=ε), robust, ipo, hinge, simpo, orpo or kto "
                + "(unpaired data; --set desirable_weight / undesirable_weight) "
                + "(default \(DPOConfig().lossType.rawValue)).")
    )
    var loss: String?
    @Option(help: "β (default \(DPOConfig().beta)).") var beta: Double?
    @OptionGroup var training: TrainingFlags

    func validate() throws {
        try checkOutputDirectory(out)
        if modelOptions.adapter != nil {
            throw ValidationError("dpo starts a new adapter; to continue a run pass --resume DIR.")
        }
        if let loss, loss != "kto", DPOLoss.Kind(name: loss) == nil {
            throw ValidationError(
                "--loss \(loss): use one of dpo, cdpo, "
                    + "\(DPOLoss.Kind.allCases.map(\.rawValue).joined(separator: ", ")), kto.")
        }
    }

    func run() throws {
        if loss == "kto" { return try runKTO() }
        var extra: [String: Any] = [:]
        if let loss, let kind = DPOLoss.Kind(name: loss) { extra["loss_type"] = kind.rawValue }
        if let beta { extra["beta"] = beta }
        let config = try training.resolve(DPOConfig.self, extra: extra)
        if loss == "cdpo" && config.labelSmoothing == 0 {
            throw ValidationError(
                "--loss cdpo is DPO with label smoothing: add --set label_smoothing=ε (e.g. 0.1; in (0, 0.5)).")
        }
        let loaded = try modelOptions.load(trainable: config.loraRank == 0)
        let prepared = try PreferenceData.prepare(
            training: config.training, maxPromptLength: config.effectiveMaxPromptLength, tokenizer: loaded.tokenizer,
            chatTemplate: loaded.chatTemplate, trainFile: URL(fileURLWithPath: data),
            evalFile: evalData.map { URL(fileURLWithPath: $0) })
        prepared.report.forEach(note)
        note(
            "Reference log-probs of \(prepared.train.count + prepared.eval.count) pairs "
                + "(once, through the starting model)…"
        )
        let trainer = try DPOTrainer(
            config: config, model: loaded, data: prepared, outputDirectory: URL(fileURLWithPath: out),
            baseModel: modelOptions.model)
        note("\(config.lossType.rawValue), β \(config.beta): \(trainer.trainableParameterCount) trainable parameters")
        try training.run(trainer, export: trainer.exportFinal)
    }

    func runKTO() throws {
        var extra: [String: Any] = [:]
        if let beta { extra["beta"] = beta }
        let config = try training.resolve(KTOConfig.self, extra: extra)
        let loaded = try modelOptions.load(trainable: config.loraRank == 0)
        let prepared = try KTOData.prepare(
            training: config.training, maxPromptLength: config.effectiveMaxPromptLength, tokenizer: loaded.tokenizer,
            chatTemplate: loaded.chatTemplate, trainFile: URL(fileURLWithPath: data),
            evalFile: evalData.map { URL(fileURLWithPath: $0) })
        prepared.report.forEach(note)
        note(
            "Reference log-probs of \(prepared.train.count + prepared.eval.count) completions and their mismatched pairs…"
        )
        let trainer = try KTOTrainer(
            config: config, model: loaded, data: prepared, outputDirectory: URL(fileURLWithPath: out),
            baseModel: modelOptions.model)
        note("kto, β \(config.beta): \(trainer.trainableParameterCount) trainable parameters")
        try training.run(trainer, export: trainer.exportFinal)
    }
}

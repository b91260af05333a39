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
            "Preference optimisation on TRL's {\"prompt\", \"chosen\", \"rejected\"} JSONL "
            + "(reference = the starting model)."
    )

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Training pairs (JSONL).") var data: String
    @Option(help: "Evaluation pairs (JSONL); default: hold out eval_fraction of the training data.") var evalData:
        String?
    @Option(help: "Output directory (metrics.jsonl, checkpoints, the final adapter or model).") var out: String
    @Option(
        help: ArgumentHelp(
            "sigmoid (DPO), robust, ipo, hinge or simpo (default \(DPOConfig().lossType.rawValue)); "
                + "cDPO = sigmoid with --set label_smoothing=ε.")
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
        var extra: [String: Any] = [:]
        if let loss { extra["loss_type"] = loss }
        if let beta { extra["beta"] = beta }
        let config = try training.resolve(DPOConfig.self, extra: extra)
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
}

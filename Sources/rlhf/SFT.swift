// `rlhf sft`: supervised fine-tuning with LoRA (default) or full weights.

import ArgumentParser
import Foundation
import ModelExport
import Models
import Trainers

struct SFT: ParsableCommand, DataParallelCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract:
            "Supervised fine-tuning on JSONL in TRL's formats ({\"messages\": …} or {\"prompt\", \"completion\"}).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Training data (JSONL).") var data: String
    @Option(help: "Evaluation data (JSONL); default: hold out eval_fraction of the training data.") var evalData:
        String?
    @Option(help: "Output directory (metrics.jsonl, checkpoints, the final adapter or model).") var out: String
    @OptionGroup var training: TrainingFlags

    func validate() throws {
        try checkOutputDirectory(out)
        if modelOptions.adapter != nil {
            throw ValidationError("sft starts a new adapter; to continue a run pass --resume DIR instead of --adapter.")
        }
    }

    func run() throws {
        let config = try training.resolve(SFTConfig.self)
        let loaded = try modelOptions.load(trainable: config.loraRank == 0)
        let prepared = try SFTData.prepare(
            config: config, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate,
            trainFile: URL(fileURLWithPath: data), evalFile: evalData.map { URL(fileURLWithPath: $0) })
        prepared.report.forEach(note)
        let trainer = try SFTTrainer(
            config: config, model: loaded, data: prepared, outputDirectory: URL(fileURLWithPath: out),
            baseModel: modelOptions.model)
        note(
            config.lora.map {
                "LoRA r=\($0.rank) α=\($0.alpha) on \($0.targetModules.joined(separator: ",")):"
                    + " \(trainer.trainableParameterCount) trainable parameters"
            } ?? "Full fine-tune: \(trainer.trainableParameterCount) trainable parameters")
        if trainer.usesActivationCheckpointing && !config.activationCheckpointing {
            note(
                "Activation checkpointing on: batch_size × max_length would need more than "
                    + "\(TrainingArguments.activationBudgetBytes >> 30) GiB of saved activations.")
        }
        try training.run(trainer, export: trainer.exportFinal)
    }
}

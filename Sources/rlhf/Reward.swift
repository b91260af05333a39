// `rlhf reward` (train a reward model on preference pairs), `rlhf eval-reward` (its accuracy on pairs)
// and `rlhf score` (one prompt + completion).

import ArgumentParser
import Datasets
import Foundation
import ModelExport
import Models
import Trainers

struct Reward: ParsableCommand, DataParallelCommand {
    static let configuration = CommandConfiguration(
        commandName: "reward",
        abstract:
            "Train a reward model on preference pairs (TRL's {\"prompt\", \"chosen\", \"rejected\"} JSONL, optional "
            + "\"margin\") or K-wise rankings ({\"prompt\", \"completions\", \"ranking\"}, best first).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Training comparisons (JSONL): pairs or rankings.") var data: String
    @Option(help: "Evaluation comparisons (JSONL); default: hold out eval_fraction of the training data.")
    var evalData: String?
    @Option(
        help: ArgumentHelp(
            "Output directory (metrics.jsonl, checkpoints, the final adapter + score head or model, "
                + "reward_model.json).")
    )
    var out: String
    @OptionGroup var training: TrainingFlags

    func validate() throws {
        try checkOutputDirectory(out)
        if modelOptions.adapter != nil {
            throw ValidationError(
                "reward starts a new adapter and head; to continue a run pass --resume DIR instead of --adapter.")
        }
    }

    func run() throws {
        let config = try training.resolve(RewardConfig.self)
        let loaded = try modelOptions.load(trainable: config.loraRank == 0)
        let prepared = try ComparisonData.prepare(
            training: config.training, maxPromptLength: config.effectiveMaxPromptLength, tokenizer: loaded.tokenizer,
            chatTemplate: loaded.chatTemplate, trainFile: URL(fileURLWithPath: data),
            evalFile: evalData.map { URL(fileURLWithPath: $0) })
        prepared.report.forEach(note)
        let trainer = try RewardTrainer(
            config: config, model: loaded, data: prepared, outputDirectory: URL(fileURLWithPath: out),
            baseModel: modelOptions.model)
        note(
            "\(trainer.trainableParameterCount) trainable parameters "
                + "(\(config.lora == nil ? "full" : "LoRA") + score head)"
        )
        try training.run(trainer, export: trainer.exportFinal)
    }
}

/// `--reward DIR`: a reward adapter (PEFT + score, or a training output) over `--model`, or a
/// sequence-classification directory used as the model itself.
struct RewardOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The reward model: an adapter with a score head (e.g. `rlhf reward`'s output) "
                + "or an HF sequence-classification directory.")
    )
    var reward: String
    @Option(help: "The base model a reward adapter applies to (default \(ModelRegistry.defaultModelName)).")
    var model: String = ModelRegistry.defaultModelName
    @Flag(
        help: ArgumentHelp(
            "Hold the base in bf16 and multiply in bf16, as `rlhf reward --bf16` trained it: half the weight memory"
                + " and, with AVX512_BF16, faster scoring; scores differ from fp32 by ~1e-2.")
    )
    var bf16 = false

    func load() throws -> RewardModel {
        try RewardModel.load(reward: URL(fileURLWithPath: reward), model: model, form: bf16 ? .bf16 : .dense, log: note)
    }
}

struct EvalReward: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-reward", abstract: "A reward model's accuracy on preference pairs (or rankings).")

    @OptionGroup var rewardOptions: RewardOptions
    @Option(help: "Preference pairs or K-wise rankings (JSONL).") var data: String
    @Option(help: "Truncate comparisons to this many tokens.") var maxLength: Int = TrainingArguments().maxLength
    @Option(
        help: ArgumentHelp(
            "A truncated comparison keeps at most this many prompt tokens (default: as `rlhf reward`, "
                + "min(\(RewardConfig().maxPromptLength), max-length / 2)).")
    )
    var maxPromptLength: Int?
    @Flag(help: "Print {\"accuracy\", \"mean_margin\", \"pairs\"} as JSON.") var json = false

    struct Output: Encodable { let accuracy: Double; let mean_margin: Double; let pairs: Int }

    func run() throws {
        let rm = try rewardOptions.load()
        let (comparisons, report) = try ComparisonData.read(
            URL(fileURLWithPath: data), maxLength: maxLength,
            maxPromptLength: maxPromptLength ?? min(RewardConfig().maxPromptLength, maxLength / 2),
            tokenizer: rm.loaded.tokenizer, chatTemplate: rm.loaded.chatTemplate)
        note(report.description)
        guard !comparisons.isEmpty else { throw ValidationError("\(data): no comparison left to evaluate.") }
        let l = try rm.evaluate(comparisons)
        if json {
            try printJSON(Output(accuracy: l.accuracy, mean_margin: l.margin, pairs: l.pairs))
        } else {
            print(String(format: "accuracy %.4f, mean margin %.4f over %d pairs", l.accuracy, l.margin, l.pairs))
        }
    }
}

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A reward model's score of a prompt and completion.")

    @OptionGroup var rewardOptions: RewardOptions
    @Option(help: "The prompt (a user message when the model has a chat template).") var prompt: String
    @Option(help: "The completion (the assistant's reply).") var completion: String
    @Flag(help: "Print {\"score\": x, \"normalized_score\": (x − mean) / std when the model stores them}.")
    var json = false

    struct Output: Encodable { let score: Double; let normalized_score: Double? }

    func run() throws {
        let rm = try rewardOptions.load()
        let encoder = try PreferenceEncoder(tokenizer: rm.loaded.tokenizer, chatTemplate: rm.loaded.chatTemplate)
        // The pair encoder renders prompt and response exactly as training did; its second response is unused.
        let pair = try encoder.encode(
            .conversation(
                prompt: [Message(role: .user, content: prompt)],
                chosen: [Message(role: .assistant, content: completion)],
                rejected: [Message(role: .assistant, content: completion + " ")]))
        let score = try rm.scores([pair.promptIDs + pair.chosenIDs])[0]
        let normalized = rm.normalization.map { _ in rm.normalized(score) }
        if json {
            try printJSON(Output(score: score, normalized_score: normalized))
        } else {
            print(normalized.map { "\(score) (normalised \($0))" } ?? "\(score)")
        }
    }
}

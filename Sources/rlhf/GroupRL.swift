// `rlhf grpo` and `rlhf rloo`: critic-free RL on prompts (TRL's `{"prompt": string | [messages]}`) with a
// reward model or a built-in programmatic reward.

import ArgumentParser
import Foundation
import ModelExport
import Models
import Trainers

/// Where rewards come from: a reward model or a built-in programmatic reward.
struct RewardSourceOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "A reward model (an `rlhf reward` output, a PEFT adapter with a score head or a sequence-classification "
                + "directory); scores are normalised with its stored statistics.")
    )
    var reward: String?
    @Option(
        help: ArgumentHelp(
            "A built-in reward instead of a reward model: length:N (−|tokens − N|/N), regex:PATTERN (1 when the "
                + "completion matches) or exact (1 when the final answer — after ####, in \\boxed{}, or the last number "
                + "— equals the prompt record's \"answer\").")
    )
    var rewardFn: String?

    func validate() throws {
        if (reward == nil) == (rewardFn == nil) {
            throw ValidationError(
                "Pass exactly one of --reward DIR (a reward model) or --reward-fn length:N|regex:P|exact.")
        }
    }

    /// The reward model of `--reward`, if any: an adapter is loaded onto `base` (sharing its frozen weights) unless
    /// `ownBase`, or when it is a sequence-classification directory, where it is its own (quantised) model.
    func rewardModel(onto base: LoadedModel, model: String, ownBase: Bool) throws -> RewardModel? {
        guard let reward else { return nil }
        let url = URL(fileURLWithPath: reward)
        let isModelDirectory = FileManager.default.fileExists(atPath: url.appendingPathComponent("config.json").path)
        let rm =
            isModelDirectory || ownBase
            ? try RewardModel.load(reward: url, model: model, form: .quantized, log: note)
            : try RewardModel.load(reward: url, onto: base, baseName: model)
        guard rm.loaded.tokenizer.fingerprint == base.tokenizer.fingerprint else {
            throw ValidationError(
                "--reward \(reward) uses another tokenizer (\(rm.loaded.tokenizer.fingerprint.prefix(12))…) than "
                    + "the policy (\(base.tokenizer.fingerprint.prefix(12))…); train the reward model on the "
                    + "policy's base.")
        }
        return rm
    }

    /// The reward: the reward model (normalised with its stored statistics when `normalize`) or the built-in.
    func rewardFunction(_ rm: RewardModel?, normalize: Bool = true) throws -> RewardFunction {
        if let rm { return RewardFunction(rewardModel: rm, normalize: normalize) }
        let spec = rewardFn!
        if spec == "exact" { return .exactAnswer }
        if spec.hasPrefix("length:"), let n = Int(spec.dropFirst(7)), n > 0 { return .lengthTarget(n) }
        if spec.hasPrefix("regex:") {
            do {
                return try .regexMatch(String(spec.dropFirst(6)))
            } catch {
                throw ValidationError("--reward-fn \(spec): not a valid regular expression (\(error)).")
            }
        }
        throw ValidationError("--reward-fn \(spec): use length:N (N > 0), regex:PATTERN or exact.")
    }
}

/// The flags `grpo` and `rloo` share.
struct GroupRLOptions: ParsableArguments {
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Prompts (JSONL: {\"prompt\": string | [messages]}).") var prompts: String
    @Option(help: "Output directory (metrics.jsonl, checkpoints, the final adapter or model).") var out: String
    @OptionGroup var rewardSource: RewardSourceOptions
    @Option(help: "Completions per prompt (default \(GroupRLConfig().numGenerations)).") var numGenerations: Int?
    @Option(help: "New tokens per completion (default \(GroupRLConfig().maxCompletionLength)).")
    var maxCompletionLength: Int?
    @Option(help: "KL coefficient β (default \(GroupRLConfig().beta)).") var beta: Double?
    @OptionGroup var training: TrainingFlags

    func validate() throws {
        try checkOutputDirectory(out)
        if modelOptions.adapter != nil {
            throw ValidationError("RL starts a new policy adapter; to continue a run pass --resume DIR.")
        }
    }

    func run(_ estimator: GroupRLConfig.Estimator) throws {
        var extra: [String: Any] = ["estimator": estimator.rawValue]
        if let numGenerations { extra["num_generations"] = numGenerations }
        if let maxCompletionLength { extra["max_completion_length"] = maxCompletionLength }
        if let beta { extra["beta"] = beta }
        let config = try training.resolve(GroupRLConfig.self, extra: extra)
        let loaded = try modelOptions.load(trainable: config.loraRank == 0)
        let reward = try rewardSource.rewardFunction(
            try rewardSource.rewardModel(onto: loaded, model: modelOptions.model, ownBase: config.loraRank == 0))
        let data = try PromptData.prepare(
            training: config.training, maxCompletionLength: config.maxCompletionLength, tokenizer: loaded.tokenizer,
            chatTemplate: loaded.chatTemplate, file: URL(fileURLWithPath: prompts))
        data.report.forEach(note)
        // A full fine-tune scores the reference on a frozen copy of the starting model, in the file's own form (a GGUF's
        // quantised blocks: the values the policy started from, products in fp32, a fifth of the dense bytes).
        let reference =
            config.loraRank == 0 && config.beta > 0 ? try modelOptions.load(trainable: false, inference: true) : nil
        let trainer = try GroupRLTrainer(
            config: config, model: loaded, reference: reference, data: data, reward: reward,
            outputDirectory: URL(fileURLWithPath: out), baseModel: modelOptions.model)
        note(
            "\(estimator.rawValue): \(config.promptsPerBatch) prompts × \(config.numGenerations) completions per "
                + "micro-batch, β \(config.beta), reward \(reward.name); \(trainer.trainableParameterCount) "
                + "trainable parameters")
        try training.run(trainer, export: trainer.exportFinal)
    }
}

struct GRPO: ParsableCommand, DataParallelCommand {
    static let configuration = CommandConfiguration(
        commandName: "grpo",
        abstract: "GRPO (group-normalised advantages, k3 KL in the loss) on prompts, reference = the starting model.")
    @OptionGroup var options: GroupRLOptions
    func run() throws { try options.run(.grpo) }
}

struct RLOO: ParsableCommand, DataParallelCommand {
    static let configuration = CommandConfiguration(
        commandName: "rloo",
        abstract: "RLOO (leave-one-out baseline, sequence KL in the reward) on prompts, reference = the starting model."
    )
    @OptionGroup var options: GroupRLOptions
    func run() throws { try options.run(.rloo) }
}

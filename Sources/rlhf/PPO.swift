// `rlhf ppo`: PPO-RLHF on prompts (TRL's `{"prompt": string | [messages]}`) against a reward model or a built-in
// reward, with the critic started from the reward model, KL control to the starting policy and optional PPO-ptx.

import ArgumentParser
import Datasets
import Distributed
import Foundation
import ModelExport
import Models
import Trainers

struct PPOCommand: ParsableCommand, DataParallelCommand {
    static let configuration = CommandConfiguration(
        commandName: "ppo",
        abstract: "PPO with a KL penalty to the starting policy (reference), a critic from the reward model, GAE.",
        discussion: """
            One iteration samples one completion for each of per_device_train_batch_size × \
            gradient_accumulation_steps × num_mini_batches prompts, then takes num_ppo_epochs passes of \
            num_mini_batches optimizer steps over them (an optimizer step = one minibatch; --iterations N stops \
            after N iterations). The starting policy is --model, or --model with the SFT adapter --policy merged \
            into it: it is also the reference. With LoRA, policy, reference, critic and a reward adapter share one \
            frozen base in memory; a full fine-tune (--lora-rank 0) keeps a second, frozen copy for them. \
            metrics.jsonl uses TRL's names (objective/kl, objective/scores, objective/rlhf_reward, \
            policy/clipfrac_avg, val/clipfrac_avg, policy/approxkl_avg, …); samples.jsonl holds a few \
            completions every log_samples_every iterations; the critic is exported to OUT/critic. Under mpirun the \
            ranks share the rollout phase in chunks of local_rollout_forward_batch_size completions (default: one \
            minibatch), so set it to at most rollout batch / ranks to keep every rank sampling.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(
        help: ArgumentHelp(
            "The starting policy when it is an SFT adapter (an `rlhf sft` output or PEFT directory): merged into "
                + "--model, which then is the reference too. A model (file or directory) here replaces --model."))
    var policy: String?
    @Option(help: "Prompts (JSONL: {\"prompt\": string | [messages]}).") var prompts: String
    @Option(help: "Output directory (metrics.jsonl, samples.jsonl, checkpoints, the final policy and critic).")
    var out: String
    @OptionGroup var rewardSource: RewardSourceOptions
    @Option(help: "New tokens per completion (default \(PPOConfig().responseLength)).") var responseLength: Int?
    @Option(help: "KL coefficient β, the initial one with --adaptive-kl (default \(PPOConfig().klCoef)).")
    var klCoef: Double?
    @Option(help: "Ziegler et al.'s adaptive KL controller towards this sequence KL (nats).") var klTarget: Double?
    @Option(help: "PPO epochs per rollout batch (default \(PPOConfig().numPPOEpochs)).") var numPPOEpochs: Int?
    @Option(help: "Minibatches (optimizer steps) per PPO epoch (default \(PPOConfig().numMiniBatches)).")
    var numMiniBatches: Int?
    @Option(help: "Stop after this many PPO iterations (rollout batches).") var iterations: Int?
    @Option(help: "Demonstrations for PPO-ptx (a TRL SFT JSONL file); needs --ptx-coef.") var ptxData: String?
    @Option(help: "PPO-ptx coefficient γ on the demonstrations' NLL (InstructGPT eq. 2).") var ptxCoef: Double?
    @OptionGroup var training: TrainingFlags

    func validate() throws {
        try checkOutputDirectory(out)
        if modelOptions.adapter != nil {
            throw ValidationError("Pass an SFT adapter as --policy DIR; to continue a run pass --resume DIR.")
        }
        if (ptxData == nil) != (ptxCoef == nil) {
            throw ValidationError("PPO-ptx needs both --ptx-data FILE and --ptx-coef γ.")
        }
        if let iterations, iterations < 1 { throw ValidationError("Please pass --iterations ≥ 1.") }
    }

    func run() throws {
        var extra: [String: Any] = [:]
        if let responseLength { extra["response_length"] = responseLength }
        if let klCoef { extra["kl_coef"] = klCoef }
        if let klTarget {
            extra["adaptive_kl"] = true
            extra["kl_target"] = klTarget
        }
        if let numPPOEpochs { extra["num_ppo_epochs"] = numPPOEpochs }
        if let numMiniBatches { extra["num_mini_batches"] = numMiniBatches }
        if let ptxCoef { extra["ptx_coef"] = ptxCoef }
        var config = try training.resolve(PPOConfig.self, extra: extra)
        if let iterations, training.resume == nil {
            guard iterations >= 1, iterations <= (1 << 30) / config.stepsPerIteration else {
                throw ValidationError(
                    "--iterations \(iterations): expected 1...\((1 << 30) / config.stepsPerIteration) (the run's optimizer"
                        + " steps, iterations × num_ppo_epochs × num_mini_batches, are at most \(1 << 30))")
            }
            extra["max_steps"] = iterations * config.stepsPerIteration
            config = try training.resolve(PPOConfig.self, extra: extra)
        }
        let chunks = (config.rolloutBatchSize + config.rolloutChunkSize - 1) / config.rolloutChunkSize
        if World.launchedSize > chunks {
            note(
                "warning: \(World.launchedSize) ranks share \(chunks) rollout chunk(s) of \(config.rolloutChunkSize) "
                    + "completions: some ranks will wait while others sample. Pass --set "
                    + "local_rollout_forward_batch_size=N (a multiple of per_device_train_batch_size, at most "
                    + "\(config.rolloutBatchSize / World.launchedSize)) to spread the sampling.")
        }
        let full = config.loraRank == 0
        // The starting policy: --model, or --model with the SFT adapter --policy merged in (then also the reference).
        var options = modelOptions
        var sft: URL?
        if let policy {
            let url = URL(fileURLWithPath: policy)
            if (try? ModelLoader.adapterDirectory(url)) != nil { sft = url } else { options.model = policy }
        }
        if sft != nil && (options.bf16 || options.quantized) {
            throw ValidationError(
                "--policy with an SFT adapter merges it into the base: load it dense (no --bf16/--quantized).")
        }
        func start(trainable: Bool) throws -> LoadedModel {
            // The frozen reference keeps a GGUF's quantised blocks unless an SFT adapter is merged into it.
            let loaded = try options.load(trainable: trainable, inference: !trainable && sft == nil)
            guard let sft else { return loaded }
            let merged = try ModelLoader.load(adapter: sft, onto: loaded, name: "sft")
            merged.model.merge(adapter: "sft")
            note("Merged the SFT adapter \(sft.path) into \(options.model): the starting policy and the reference.")
            return LoadedModel(
                model: merged.model, tokenizer: merged.tokenizer, chatTemplate: merged.chatTemplate,
                source: merged.source)
        }
        let loaded = try start(trainable: full)
        let reference = full ? try start(trainable: false) : nil
        // A reward adapter shares the frozen base when that base is the one it was trained on (no SFT merged in).
        let rm = try rewardSource.rewardModel(onto: reference ?? loaded, model: options.model, ownBase: sft != nil)
        let reward = try rewardSource.rewardFunction(rm, normalize: config.normalizeReward)
        let data = try PromptData.prepare(
            training: config.training, maxCompletionLength: config.responseLength, tokenizer: loaded.tokenizer,
            chatTemplate: loaded.chatTemplate, file: URL(fileURLWithPath: prompts))
        data.report.forEach(note)
        var demonstrations: [EncodedExample] = []
        if let ptxData {
            var sftConfig = SFTConfig()
            sftConfig.training = config.training
            let demos = try SFTData.prepare(
                config: sftConfig, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate,
                trainFile: URL(fileURLWithPath: ptxData), evalFile: nil)
            demos.report.forEach(note)
            demonstrations = demos.train
        }
        let trainer = try PPOTrainer(
            config: config, model: loaded, reference: reference, data: data, reward: reward, rewardModel: rm,
            demonstrations: demonstrations, outputDirectory: URL(fileURLWithPath: out), baseModel: options.model)
        let critic =
            rm?.adapter != nil && sft == nil ? "from the reward model" : rm != nil ? "with the reward head" : "fresh"
        let adaptive = config.adaptiveKL ? " adaptive → KL \(config.klTarget)" : ""
        note(
            "ppo: \(config.rolloutBatchSize) completions per iteration, \(config.stepsPerIteration) optimizer steps "
                + "each (\(config.numPPOEpochs) epochs × \(config.numMiniBatches) minibatches), β \(config.klCoef)"
                + adaptive + ", reward \(reward.name), critic \(critic); \(trainer.trainableParameterCount) "
                + "trainable parameters")
        try training.run(trainer, export: trainer.exportFinal)
        for w in trainer.driftWarnings {
            note(
                String(
                    format: "warning: at step %d the re-computed log-probs differed from the sampling ones by %.2e "
                        + "(> logprob_drift_warning): sampling and scoring disagree.", w.step, w.drift))
        }
    }
}

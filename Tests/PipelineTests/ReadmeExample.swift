// The README's "From Swift" example, kept here so that it compiles with the library as it is (not run: it trains
// on the real model and files a user supplies). Keep the two in step.

import Foundation
import ModelExport
import Pipeline
import Trainers

func readmeExample() throws {
    // Load the default model (fp32, frozen base for LoRA), train a reward model on TRL preference JSONL.
    let loaded = try ModelLoader.load(model: "smollm2-135m-instruct")
    var rm = RewardConfig()
    rm.maxSteps = 100
    let pairs = try ComparisonData.prepare(
        training: rm.training, maxPromptLength: rm.effectiveMaxPromptLength, tokenizer: loaded.tokenizer,
        chatTemplate: loaded.chatTemplate, trainFile: URL(fileURLWithPath: "pairs.jsonl"), evalFile: nil)
    let rewardTrainer = try RewardTrainer(
        config: rm, model: loaded, data: pairs, outputDirectory: URL(fileURLWithPath: "runs/rm"),
        baseModel: "smollm2-135m-instruct")
    try rewardTrainer.train()
    let rewardDir = try rewardTrainer.exportFinal()

    // PPO against it: policy, reference (= no adapter), critic (from the reward model) and reward model are all
    // adapters on the one frozen base.
    let rewardModel = try RewardModel.load(reward: rewardDir, onto: loaded, baseName: "smollm2-135m-instruct")
    var ppo = PPOConfig()
    ppo.maxSteps = 40
    let prompts = try PromptData.prepare(
        training: ppo.training, maxCompletionLength: ppo.responseLength, tokenizer: loaded.tokenizer,
        chatTemplate: loaded.chatTemplate, file: URL(fileURLWithPath: "prompts.jsonl"))
    let ppoTrainer = try PPOTrainer(
        config: ppo, model: loaded, data: prompts, reward: RewardFunction(rewardModel: rewardModel),
        rewardModel: rewardModel, outputDirectory: URL(fileURLWithPath: "runs/ppo"), baseModel: "smollm2-135m-instruct")
    try ppoTrainer.train(onEvent: { event in
        print(event)
        return .proceed
    })
    try ppoTrainer.exportFinal()  // runs/ppo/adapter (PEFT) and runs/ppo/critic

    _ = RewardFunction(name: "short") { rollout in -Double(rollout.completionIDs.count) }
    try DemoPipeline(
        config: .quick, base: loaded, baseModel: "smollm2-135m-instruct", out: URL(fileURLWithPath: "demo"),
        observer: DemoObserver()
    ).run()
}

// The sizes and hyper-parameters of `rlhf demo`, one place for each default. `--config FILE` (JSON or YAML)
// overrides any of them by its snake_case key; unknown keys, wrong types and out-of-range values are errors
// naming the key. `quick` is the same pipeline at toy sizes (the test suite runs it).

import Foundation
import Models
import Trainers

public struct DemoConfig: PartialConfig, Equatable {
    public var seed: UInt64 = 0
    /// Pilot mode (the seed's advice: try the pipeline on 5–10 % of the data first): the share of the training
    /// prompts every stage uses.
    public var dataFraction: Double = 1
    public var trainPrompts = 192
    public var evalPrompts = 32
    /// Prompts of another kind (differences; the reward model trains on sums) for the generalisation measure.
    public var oodPrompts = 32
    public var maxNewTokens = 24
    /// Sampling temperature of everything sampled: the pairs the annotators label, best-of-n, the PPO and GRPO
    /// rollouts (so their KL is measured at it) and the sampled evaluation.
    public var sampleTemperature = 1.0
    /// Sampled replies per evaluation prompt when a policy is scored by its samples (the held-out PPO points).
    public var evalSamples = 4

    public var sftSteps = 40
    public var sftLearningRate = 2e-4

    public var annotatorTemperature = 0.3
    public var annotatorFlipRate = 0.1

    public var rewardSteps = 36
    public var rewardLoraRank = 16
    public var rewardLearningRate = 3e-4

    public var ppoIterations = 20
    /// Rollouts per PPO iteration.
    public var ppoBatchSize = 16
    public var ppoEpochs = 2
    /// Weak on purpose, so that the proxy can be over-optimised within the demo's budget.
    public var ppoKlCoef = 0.01
    public var ppoLearningRate = 1e-4

    public var bonPrompts = 12
    public var bonMaxN = 64

    public var dpoSteps = 24
    public var dpoBeta = 0.1
    public var dpoLearningRate = 1e-4

    public var grpoSteps = 8
    public var grpoNumGenerations = 4
    public var grpoBeta = 0.04
    public var grpoLearningRate = 1e-4

    public init() {}

    /// The same stages at toy sizes (about two minutes on two cores).
    public static var quick: DemoConfig {
        var c = DemoConfig()
        c.trainPrompts = 32
        c.evalPrompts = 8
        c.oodPrompts = 8
        c.evalSamples = 2
        c.maxNewTokens = 16
        c.sftSteps = 8
        c.rewardSteps = 8
        c.ppoIterations = 3
        c.ppoBatchSize = 8
        c.ppoEpochs = 1
        c.bonPrompts = 4
        c.bonMaxN = 8
        c.dpoSteps = 4
        c.grpoSteps = 2
        return c
    }

    /// Training prompts after `data_fraction` (at least one PPO rollout batch, at most all of them).
    public var effectiveTrainPrompts: Int {
        min(trainPrompts, max(ppoBatchSize, Int((Double(trainPrompts) * dataFraction).rounded())))
    }

    /// The keys each stage reads, its upstream stages' included: a stage finished in an earlier run is reused
    /// only while these are unchanged (so a new `ppo_kl_coef` redoes PPO alone, a new `annotator_flip_rate`
    /// the pairs and everything trained on them).
    static let stageKeys: [String: [CodingKeys]] = {
        let baseline: [CodingKeys] = [.seed, .evalPrompts, .maxNewTokens, .evalSamples, .sampleTemperature]
        let sft = baseline + [.trainPrompts, .dataFraction, .ppoBatchSize, .sftSteps, .sftLearningRate]
        let pairs = sft + [.oodPrompts, .annotatorTemperature, .annotatorFlipRate]
        let reward = pairs + [.rewardSteps, .rewardLoraRank, .rewardLearningRate]
        return [
            "baseline": baseline, "sft": sft, "pairs": pairs, "reward": reward,
            "ppo": reward + [.ppoIterations, .ppoEpochs, .ppoKlCoef, .ppoLearningRate],
            "best_of_n": reward + [.bonPrompts, .bonMaxN],
            "dpo": pairs + [.dpoSteps, .dpoBeta, .dpoLearningRate],
            "grpo": reward + [.grpoSteps, .grpoNumGenerations, .grpoBeta, .grpoLearningRate],
        ]
    }()

    /// The values of the keys `stage` reads, as sorted JSON (the stage record's fingerprint).
    public func fingerprint(stage: String, model: String) throws -> String {
        let all = (try JSONSerialization.jsonObject(with: JSONEncoder().encode(self))) as! [String: Any]
        var picked: [String: Any] = ["model": model]
        for key in Self.stageKeys[stage] ?? CodingKeys.allCases { picked[key.rawValue] = all[key.rawValue] }
        return String(
            decoding: try JSONSerialization.data(withJSONObject: picked, options: [.sortedKeys]), as: UTF8.self)
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case seed, dataFraction = "data_fraction", trainPrompts = "train_prompts", evalPrompts = "eval_prompts"
        case oodPrompts = "ood_prompts", maxNewTokens = "max_new_tokens", sampleTemperature = "sample_temperature"
        case evalSamples = "eval_samples"
        case sftSteps = "sft_steps", sftLearningRate = "sft_learning_rate"
        case annotatorTemperature = "annotator_temperature", annotatorFlipRate = "annotator_flip_rate"
        case rewardSteps = "reward_steps", rewardLoraRank = "reward_lora_rank"
        case rewardLearningRate = "reward_learning_rate"
        case ppoIterations = "ppo_iterations", ppoBatchSize = "ppo_batch_size", ppoEpochs = "ppo_epochs"
        case ppoKlCoef = "ppo_kl_coef", ppoLearningRate = "ppo_learning_rate"
        case bonPrompts = "bon_prompts", bonMaxN = "bon_max_n"
        case dpoSteps = "dpo_steps", dpoBeta = "dpo_beta", dpoLearningRate = "dpo_learning_rate"
        case grpoSteps = "grpo_steps", grpoNumGenerations = "grpo_num_generations", grpoBeta = "grpo_beta"
        case grpoLearningRate = "grpo_learning_rate"
    }

    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// Range checks, each naming its key.
    public func validate(source: String) throws {
        func check(_ ok: Bool, _ key: CodingKeys, _ value: Any, _ expected: String) throws {
            if !ok {
                throw ConfigFileError.invalidValue(
                    file: source, key: key.rawValue, reason: "expected \(expected), got \(value)")
            }
        }
        try check(dataFraction > 0 && dataFraction <= 1, .dataFraction, dataFraction, "a number in (0, 1]")
        for (key, value) in [
            (CodingKeys.trainPrompts, trainPrompts), (.evalPrompts, evalPrompts), (.oodPrompts, oodPrompts),
            (.evalSamples, evalSamples),
            (.sftSteps, sftSteps), (.rewardSteps, rewardSteps), (.rewardLoraRank, rewardLoraRank),
            (.ppoIterations, ppoIterations), (.ppoEpochs, ppoEpochs), (.bonPrompts, bonPrompts),
            (.dpoSteps, dpoSteps), (.grpoSteps, grpoSteps),
        ] {
            try check(value >= 1 && value <= 1_000_000, key, value, "an integer in 1…1000000")
        }
        try check(maxNewTokens >= 4 && maxNewTokens <= 256, .maxNewTokens, maxNewTokens, "an integer in 4…256")
        try check(ppoBatchSize >= 2 && ppoBatchSize % 2 == 0, .ppoBatchSize, ppoBatchSize, "an even integer ≥ 2")
        try check(
            bonMaxN >= 1 && bonMaxN <= 1024 && bonMaxN & (bonMaxN - 1) == 0, .bonMaxN, bonMaxN,
            "a power of two in 1…1024")
        try check(ppoBatchSize <= 1024, .ppoBatchSize, ppoBatchSize, "an even integer in 2…1024")
        try check(
            trainPrompts >= ppoBatchSize, .trainPrompts, trainPrompts,
            "at least ppo_batch_size (\(ppoBatchSize)): PPO samples one rollout batch of training prompts")
        try check(
            grpoNumGenerations >= 2 && grpoNumGenerations <= 16, .grpoNumGenerations, grpoNumGenerations,
            "an integer in 2…16")
        try check(
            sampleTemperature >= Double(SamplingOptions.minimumTemperature), .sampleTemperature, sampleTemperature,
            "a number ≥ \(SamplingOptions.minimumTemperature)")
        try check(annotatorTemperature > 0, .annotatorTemperature, annotatorTemperature, "a number > 0")
        try check(
            annotatorFlipRate >= 0 && annotatorFlipRate < 0.5, .annotatorFlipRate, annotatorFlipRate,
            "a number in [0, 0.5)")
        for (key, value) in [
            (CodingKeys.sftLearningRate, sftLearningRate), (.rewardLearningRate, rewardLearningRate),
            (.ppoLearningRate, ppoLearningRate), (.dpoLearningRate, dpoLearningRate),
            (.grpoLearningRate, grpoLearningRate), (.dpoBeta, dpoBeta),
        ] {
            try check(value > 0 && value.isFinite, key, value, "a number > 0")
        }
        try check(ppoKlCoef >= 0, .ppoKlCoef, ppoKlCoef, "a number ≥ 0")
        try check(grpoBeta >= 0, .grpoBeta, grpoBeta, "a number ≥ 0")
    }

    /// Reads a config file over `base` (the full or quick defaults) and validates it.
    public static func load(file: URL, over base: DemoConfig) throws -> DemoConfig {
        let config = try decode(try Self.load(file: file), source: file.path, over: base)
        try config.validate(source: file.path)
        return config
    }
}

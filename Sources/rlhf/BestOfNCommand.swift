// `rlhf best-of-n`: n samples per prompt, the best by a reward kept — a baseline (mean best vs mean sampled
// reward) and, written as SFT JSONL, the data of rejection-sampling fine-tuning (`rlhf sft --data picks.jsonl`).

import ArgumentParser
import Datasets
import Foundation
import Models
import Trainers

struct BestOfNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "best-of-n",
        abstract: "Sample n completions per prompt, keep the best by a reward; write them as SFT JSONL.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Prompts (JSONL: {\"prompt\": string | [messages]}).") var prompts: String
    @OptionGroup var rewardSource: RewardSourceOptions
    @Option(help: "Samples per prompt.") var n: Int = 4
    @Option(help: "Maximum new tokens per sample.") var maxNewTokens: Int = 128
    @Option(help: "Sampling temperature (> 0).") var temperature: Float = 1
    @Option(help: "Nucleus sampling (1 = off).") var topP: Float = 1
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Write the picks here as SFT JSONL ({\"prompt\", \"completion\"}, with the prompt as given).")
    var out: String?
    @Flag(help: "Print {\"prompts\", \"n\", \"mean_best_reward\", \"mean_reward\"} as JSON.") var json = false

    func validate() throws {
        if let out {  // checked before sampling, which can take long
            var isDirectory: ObjCBool = false
            let parent = URL(fileURLWithPath: out).deletingLastPathComponent().path
            if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) && isDirectory.boolValue {
                throw ValidationError("--out \(out) is a directory: pass the JSONL file to write.")
            }
            guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory) && isDirectory.boolValue
            else { throw ValidationError("--out \(out): its directory \(parent) does not exist.") }
        }
        guard n >= 1 && n <= 4096 else { throw ValidationError("Please pass --n in 1…4096.") }
        guard maxNewTokens >= 1 else { throw ValidationError("Please pass --max-new-tokens ≥ 1.") }
        guard temperature >= SamplingOptions.minimumTemperature else {
            throw ValidationError(
                "Please pass --temperature ≥ \(SamplingOptions.minimumTemperature): best-of-n samples.")
        }
        guard topP > 0 && topP <= 1 else { throw ValidationError("Please pass --top-p in (0, 1].") }
    }

    struct Summary: Encodable { let prompts: Int; let n: Int; let mean_best_reward: Double; let mean_reward: Double }

    func run() throws {
        let loaded = try modelOptions.load(inference: true)
        let reward = try rewardSource.rewardFunction(
            try rewardSource.rewardModel(onto: loaded, model: modelOptions.model, ownBase: true))
        let file = URL(fileURLWithPath: prompts)
        let dataset = try Dataset<PromptExample>(contentsOf: file)
        let encoded = try PromptEncoder(
            tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate,
            maxLength: loaded.model.config.maxPositions - maxNewTokens
        ).encode(dataset)
        note(encoded.report.description)
        let picks = try BestOfN.run(
            prompts: encoded.prompts, answers: dataset.records.map(\.answer), model: loaded, adapter: loaded.adapter,
            reward: reward, n: n,
            maxNewTokens: maxNewTokens, sampling: SamplingOptions(temperature: temperature, topP: topP, seed: seed)
        ) { done in FileHandle.standardError.write(Data("\rbest-of-\(n): \(done)/\(encoded.prompts.count)".utf8)) }
        FileHandle.standardError.write(Data("\n".utf8))
        if let out {
            let lines = try picks.map { pick -> String in
                let record: [String: Any]
                switch dataset.records[pick.promptIndex].prompt {
                case .text(let prompt): record = ["prompt": prompt, "completion": pick.completion.text]
                case .conversation(let messages):
                    record = [
                        "prompt": messages.map { ["role": $0.role.rawValue, "content": $0.content] },
                        "completion": [["role": "assistant", "content": pick.completion.text]],
                    ]
                }
                return String(
                    decoding: try JSONSerialization.data(
                        withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
            }
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
            note("Wrote \(picks.count) picks to \(out)")
        }
        let best = picks.reduce(0) { $0 + $1.reward } / Double(max(1, picks.count))
        let mean = picks.reduce(0) { $0 + $1.meanReward } / Double(max(1, picks.count))
        if json {
            try printJSON(Summary(prompts: picks.count, n: n, mean_best_reward: best, mean_reward: mean))
        } else {
            print(
                String(
                    format: "best-of-%d over %d prompts: mean best reward %.4f, mean reward %.4f", n, picks.count, best,
                    mean))
        }
    }
}

// `Benchmarks reward | dpo | grpo [full] [lora] [bf16]`: the reward-model, DPO and GRPO trainers end to end (the
// real training loop, data encoding excluded) on perf.md §4's workloads — 128 synthetic plain-text pairs, ~32-token
// prompt and ~96-token responses, batch 8 pairs, max_length 256, one epoch = 16 steps; GRPO: 64 ~32-token prompts
// × 4 completions of 32 new tokens, batch 16 completions, β 0.04, DAPO loss, the distinct-word reward — with
// pairs/s (s per completion) and the peak RSS of each run. Each variant runs in its own process so that its peak
// RSS is its own.

import Datasets
import Distributed
import Foundation
import ModelExport
import ModelFormats
import Models
import TensorCore
import Tokenizers
import Trainers

enum PreferenceBenchmarks {
    static let variants = ["full", "lora", "bf16"]

    /// Re-runs this executable once per trainer × variant (`…-one` parts) and prints their lines.
    static func run(_ which: Set<String>) throws {
        let trainers = ["reward", "dpo", "grpo", "ppo"].filter(which.contains)
        let asked = Set(variants).intersection(which)
        for trainer in trainers {
            // PPO: LoRA on one shared base, then an SFT LoRA run on the same token shapes for its peak RSS.
            let own = trainer == "ppo" ? ["lora", "sft"] : variants.filter { asked.isEmpty || asked.contains($0) }
            for variant in own {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
                p.arguments = ["\(trainer)-one", variant]
                try p.run()
                p.waitUntilExit()
            }
        }
    }

    /// One trainer × variant in this process.
    static func runOne(_ trainer: String, variant: String) throws {
        let form: ModelLoader.WeightForm = variant == "bf16" ? .bf16 : .dense
        let loaded = try ModelLoader.load(
            model: ModelRegistry.defaultModelName, form: form, trainable: variant == "full")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlhf-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("pairs.jsonl")
        try syntheticPairs(tokenizer: loaded.tokenizer).write(to: file, atomically: true, encoding: .utf8)
        var t = TrainingArguments()
        t.batchSize = 8
        t.maxLength = 256
        t.numTrainEpochs = 1
        t.learningRate = variant == "full" ? 1e-5 : 1e-4  // as ref/bench_trl.py
        t.loraRank = variant == "full" ? 0 : 16
        t.loraDropout = 0
        t.loggingSteps = 1000
        t.evalSteps = 0
        t.saveSteps = 100_000
        let out = dir.appendingPathComponent("out")
        if trainer == "grpo" {
            let accumulation = CommandLine.arguments.dropFirst(3).first.flatMap(Int.init) ?? 1
            return try grpo(loaded, variant: variant, training: t, accumulation: accumulation, in: dir)
        }
        if trainer == "ppo" { return try ppo(loaded, variant: variant, in: dir) }
        let start = ModelBenchmarks.now()
        let pairs: Int, anchor: String
        var setup = 0.0
        if trainer == "reward" {
            var c = RewardConfig()
            c.training = t
            c.normalizationSamples = 0
            let data = try ComparisonData.prepare(
                training: c.training, maxPromptLength: c.effectiveMaxPromptLength, tokenizer: loaded.tokenizer,
                chatTemplate: nil, trainFile: file, evalFile: nil)
            let trainer = try RewardTrainer(config: c, model: loaded, data: data, outputDirectory: out, baseModel: "b")
            setup = ModelBenchmarks.now() - start
            try trainer.train()
            pairs = data.train.count
            anchor = "TRL RewardTrainer full FT: 0.72 pairs/s, 7.0 GB (AVX-512 §4); 0.25 pairs/s, 6.9 GB (AVX2 §7)"
        } else {
            var c = DPOConfig()
            c.training = t
            let data = try PreferenceData.prepare(
                training: c.training, maxPromptLength: c.effectiveMaxPromptLength, tokenizer: loaded.tokenizer,
                chatTemplate: nil, trainFile: file, evalFile: nil)
            let trainer = try DPOTrainer(config: c, model: loaded, data: data, outputDirectory: out, baseModel: "b")
            setup = ModelBenchmarks.now() - start  // includes the reference log-probs, computed once
            try trainer.train()
            pairs = data.train.count
            anchor = "TRL DPOTrainer full FT: 0.26 pairs/s, 10.1 GB (AVX-512 §4)"
        }
        let total = ModelBenchmarks.now() - start
        print(
            "\(pad("\(trainer) \(variant == "full" ? "full fine-tune" : variant == "lora" ? "LoRA r=16" : "LoRA r=16, bf16 base")", 30))"
                + " \(String(format: "%.2f", Double(pairs) / total)) pairs/s  (\(pairs) pairs in \(f1(total)) s, of which"
                + " set-up \(f1(setup)) s), peak RSS \(Int(ModelBenchmarks.peakRSSMegabytes())) MiB   [\(anchor)]")
    }

    /// GRPO on 64 prompts × 4 completions (16 steps of 16 completions), as ref/bench_trl.py. With `accumulation` > 1
    /// a step is that many micro-batches of 16 / `accumulation` completions: the form `mpirun -np N` shares out
    /// (`mpirun -np 2 -x RLHF_NUM_THREADS=1 Benchmarks grpo-one lora 2`; rank 0 prints, with the collectives' time).
    static func grpo(
        _ loaded: LoadedModel, variant: String, training t: TrainingArguments, accumulation: Int = 1, in dir: URL
    ) throws {
        var c = GroupRLConfig()
        c.training = t
        c.batchSize = 16 / accumulation
        c.training.gradientAccumulationSteps = accumulation
        c.maxLength = 96
        c.numGenerations = 4
        c.maxCompletionLength = 32
        c.beta = 0.04
        c.lossType = .dapo
        let file = dir.appendingPathComponent("prompts.jsonl")
        var rng = RNG(seed: 1)
        let prompts = (0..<64).map { i in
            "{\"prompt\": \"Prompt \(i): \(text(tokenizer: loaded.tokenizer, tokens: 28, polite: false, rng: &rng)) Continue:\"}"
        }
        try (prompts.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        let data = try PromptData.prepare(
            training: c.training, maxCompletionLength: c.maxCompletionLength, tokenizer: loaded.tokenizer,
            chatTemplate: nil, file: file)
        // ref/bench_trl.py's rule: distinct-word fraction − 0.01·|words − 20|.
        let reward = RewardFunction(name: "diversity") { r in
            let words = r.text.split(whereSeparator: \.isWhitespace)
            return Double(Set(words).count) / Double(max(1, words.count)) - 0.01 * abs(Double(words.count - 20))
        }
        let start = ModelBenchmarks.now()
        // A full fine-tune keeps a frozen copy of the starting model as the reference (TRL's ref_model), in the
        // GGUF's quantised form as `rlhf grpo` loads it.
        let reference =
            variant == "full" ? try ModelLoader.load(model: ModelRegistry.defaultModelName, form: .quantized) : nil
        let trainer = try GroupRLTrainer(
            config: c, model: loaded, reference: reference, data: data, reward: reward,
            outputDirectory: dir.appendingPathComponent("out"), baseModel: "b")
        try trainer.train()
        let total = ModelBenchmarks.now() - start, completions = 64 * 4
        let world = trainer.loop.world
        guard world.isMain else { return }
        let phases = trainer.seconds.sorted { $0.value > $1.value }
        print("  phases: " + phases.map { "\($0.key) \(f1($0.value)) s" }.joined(separator: ", "))
        if world.size > 1 || accumulation > 1 {
            let steps = Double(trainer.totalSteps), times = trainer.loop.communication.seconds
            let wait = times["waiting"] ?? 0, exchange = times["exchanging"] ?? 0
            print(
                "grpo on \(world.size) rank(s) × \(ThreadPool.shared.threadCount) thread(s), micro-batches of"
                    + " \(c.batchSize) completions × \(accumulation) a step: all-reduce \(f1(exchange / steps * 1000)) ms"
                    + " a step (\(f1(100 * exchange / total)) % of the run), waiting for the other rank"
                    + " \(f1(wait / steps * 1000)) ms a step (\(f1(100 * wait / total)) %)")
        }
        print(
            "\(pad("grpo \(variant == "full" ? "full fine-tune" : variant == "lora" ? "LoRA r=16" : "LoRA r=16, bf16 base")", 30))"
                + " \(String(format: "%.3f", total / Double(completions))) s per completion  (\(completions) in"
                + " \(f1(total)) s), peak RSS \(Int(ModelBenchmarks.peakRSSMegabytes())) MiB   [TRL GRPOTrainer full FT:"
                + " 1.02 s/completion, 6.7 GB (AVX-512 §4); 2.88 s, 6.6 GB (AVX2 §7)]")
    }

    /// One PPO iteration as issue #16 sizes it: 64 prompts (~28 tokens) × 48 new tokens, 4 PPO epochs of 8 minibatches
    /// of 8, LoRA r=16 on the fp32 base, the reward model (an adapter + `score` head) and the critic (a copy of it)
    /// on the same base. `sft`: an SFT LoRA run on rows of the same length, for the peak-RSS comparison.
    static func ppo(_ loaded: LoadedModel, variant: String, in dir: URL) throws {
        var rng = RNG(seed: 2)
        func quoted(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        let prompts = (0..<64).map { i in
            "Prompt \(i): " + text(tokenizer: loaded.tokenizer, tokens: 28, polite: false, rng: &rng) + " Continue:"
        }
        let file = dir.appendingPathComponent("prompts.jsonl")
        let start = ModelBenchmarks.now()
        if variant == "sft" {
            let lines = prompts.map { p in
                "{\"prompt\": \(quoted(p)), \"completion\": "
                    + "\(quoted(" " + text(tokenizer: loaded.tokenizer, tokens: 48, polite: false, rng: &rng)))}"
            }
            try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
            var c = SFTConfig()
            c.batchSize = 8
            c.maxLength = 96
            c.loraRank = 16
            c.loraDropout = 0
            c.maxSteps = 8
            c.loggingSteps = 1000
            c.saveSteps = 100_000
            let data = try SFTData.prepare(
                config: c, tokenizer: loaded.tokenizer, chatTemplate: nil, trainFile: file, evalFile: nil)
            let trainer = try SFTTrainer(
                config: c, model: loaded, data: data, outputDirectory: dir.appendingPathComponent("out"),
                baseModel: "b")
            try trainer.train()
            print(
                "\(pad("sft LoRA r=16 (8 steps of 8 × ~76)", 30)) \(f1(ModelBenchmarks.now() - start)) s, peak RSS "
                    + "\(Int(ModelBenchmarks.peakRSSMegabytes())) MiB   [the baseline of PPO's RSS floor: ≤ 1.5×]")
            return
        }
        try (prompts.map { "{\"prompt\": \(quoted($0))}" }.joined(separator: "\n") + "\n")
            .write(to: file, atomically: true, encoding: .utf8)
        var c = PPOConfig()
        c.batchSize = 8
        c.numMiniBatches = 8
        c.numPPOEpochs = 4
        c.responseLength = 48
        c.maxLength = 96
        c.loraRank = 16
        c.learningRate = 1e-5
        c.maxSteps = c.stepsPerIteration
        c.loggingSteps = 1000
        c.saveSteps = 100_000
        c.logSamplesEvery = 0
        let data = try PromptData.prepare(
            training: c.training, maxCompletionLength: c.responseLength, tokenizer: loaded.tokenizer,
            chatTemplate: nil, file: file)
        var lora = LoRAConfig()
        lora.dropout = 0
        let rmAdapter = try loaded.model.addAdapter(named: "reward", config: lora, seed: 3)
        let rm = RewardModel(
            loaded: loaded, adapter: rmAdapter,
            head: ScalarHead(hiddenSize: loaded.model.config.hiddenSize, bias: false, trainable: false, seed: 4))
        let trainer = try PPOTrainer(
            config: c, model: loaded, data: data, reward: RewardFunction(rewardModel: rm, normalize: false),
            rewardModel: rm, outputDirectory: dir.appendingPathComponent("out"), baseModel: "b")
        try trainer.train()
        let total = ModelBenchmarks.now() - start, s = trainer.seconds
        let parts = ["generation", "scoring", "reference", "critic", "policy"]
        let rest = total - parts.reduce(0) { $0 + s[$1, default: 0] }
        print(
            "\(pad("ppo LoRA r=16, one iteration", 30)) \(f1(total)) s (64 × 48 new tokens, 32 updates): "
                + parts.map { "\($0) \(f1(s[$0, default: 0]))" }.joined(separator: ", ")
                + ", optimizer + other \(f1(rest)); peak RSS \(Int(ModelBenchmarks.peakRSSMegabytes())) MiB")
    }

    static let words =
        ("river stone light garden paper window music table forest market letter bridge winter summer "
        + "engine signal number answer method result system reason season island doctor student "
        + "picture morning evening corner theory problem example history village channel machine").split(separator: " ")
        .map(String.init)

    /// Sentences of random words until the text is at least `tokens` long.
    static func text(tokenizer: Tokenizer, tokens target: Int, polite: Bool, rng: inout RNG) -> String {
        var parts = polite ? ["Thank you for the question. Here is a careful answer:"] : []
        while true {
            let n = 6 + Int(rng.next() % 7)
            var w = (0..<n).map { _ in words[Int(rng.next() % UInt64(words.count))] }
            w[0] = w[0].prefix(1).uppercased() + w[0].dropFirst()
            parts.append(w.joined(separator: " ") + ".")
            let t = parts.joined(separator: " ")
            if tokenizer.encode(t, parseSpecialTokens: false).count >= target { return t }
        }
    }

    /// ref/bench_trl.py's shape: "Question i: <~28 tokens> Please answer." and two ~96-token responses (the chosen
    /// one opens politely), plain text, deterministic. Its own word list and generator, not the script's text.
    static func syntheticPairs(tokenizer: Tokenizer, count: Int = 128) -> String {
        var rng = RNG(seed: 0)
        func quoted(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        return (0..<count).map { i in
            let prompt =
                "Question \(i): " + text(tokenizer: tokenizer, tokens: 28, polite: false, rng: &rng) + " Please answer."
            let chosen = " " + text(tokenizer: tokenizer, tokens: 96, polite: true, rng: &rng)
            let rejected = " " + text(tokenizer: tokenizer, tokens: 96, polite: false, rng: &rng)
            return "{\"prompt\": \(quoted(prompt)), \"chosen\": \(quoted(chosen)), \"rejected\": \(quoted(rejected))}"
        }.joined(separator: "\n") + "\n"
    }
}

// `rlhf demo` as a library: the seed's pipeline on a built-in task with a gold judge, stage by stage —
//   1 baseline · 2 SFT (LoRA, on demonstrations the task writes) · 3 pairs (two SFT samples per prompt, labelled
//   by simulated annotators) · 4 reward model (LoRA + score head on the SFT policy) · 5 PPO against the proxy with
//   KL control, proxy and gold against d = √KL · 6 best-of-n, n = 1…N · 7 DPO on the same pairs · 8 GRPO with the
//   proxy · 9 report.
// Everything after SFT shares one frozen base (the SFT adapter merged in, which is also the reference): the reward
// model, the critic and each policy are adapters on it. Each stage saves its result when it finishes
// (`OUT/stages/`), so a killed demo resumes from its last finished stage; the same seed gives the same numbers.

import Datasets
import Foundation
import ModelExport
import ModelFormats
import Models
import TensorCore
import Trainers

/// What the pipeline tells its caller (the CLI renders it; tests collect it).
public struct DemoObserver {
    public var stage: (_ index: Int, _ count: Int, _ title: String) -> Void = { _, _, _ in }
    public var log: (String) -> Void = { _ in }
    public var trainerEvent: (TrainerEvent) -> Void = { _ in }
    /// Sampling progress: done of total sequences.
    public var sampling: (_ done: Int, _ total: Int) -> Void = { _, _ in }
    public var stopRequested: () -> Bool = { false }
    public init() {}
}

public enum DemoError: Error, CustomStringConvertible {
    case interrupted(stage: String)

    public var description: String {
        switch self {
        case let .interrupted(stage):
            "Stopped during stage \(stage); the stages before it are kept. Run the same command to resume."
        }
    }
}

public final class DemoPipeline {
    public static let stages = [
        ("baseline", "Baseline: the base model on the built-in task"),
        ("sft", "LoRA SFT on the task's demonstrations"),
        ("pairs", "Pairs of SFT samples labelled by simulated annotators"),
        ("reward", "Proxy reward model (LoRA + score head) on the labelled pairs"),
        ("ppo", "PPO against the proxy, KL-penalised to the SFT policy"),
        ("best_of_n", "Best-of-n against the proxy"),
        ("dpo", "DPO on the same pairs"),
        ("grpo", "GRPO against the proxy"),
        ("report", "Report"),
    ]
    public static let taskDescription =
        "Arithmetic questions (sums of two numbers below 50; differences as the other kind) generated from the "
        + "seed; gold judge: +1 right result, +0.2 both operands stated, +0.3 finished by itself, −0.05 per word "
        + "beyond 12 (at most −0.6), −0.8 × share of repeated word bigrams."

    public let config: DemoConfig
    public let out: URL
    public let baseModel: String
    let observer: DemoObserver
    let base: LoadedModel
    public private(set) var report: DemoReport
    var sftMerged = false
    var rewardModel: RewardModel?
    let train: [TaskPrompt], eval: [TaskPrompt], ood: [TaskPrompt]
    let promptEncoder: PromptEncoder
    var encoded: [TaskPrompt: [Int32]] = [:]
    /// The stage running now (for the interruption message).
    var currentStage = ""

    /// `base`: the model, loaded dense and frozen; `baseModel`: its name for checkpoints and exports. `run` merges
    /// the SFT adapter into `base`'s weights, so each pipeline needs its own copy of the model.
    public init(config: DemoConfig, base: LoadedModel, baseModel: String, out: URL, observer: DemoObserver) throws {
        self.config = config
        self.base = base
        self.baseModel = baseModel
        self.out = out
        self.observer = observer
        report = DemoReport(config: config, model: baseModel, task: Self.taskDescription)
        promptEncoder = try PromptEncoder(tokenizer: base.tokenizer, chatTemplate: base.chatTemplate)
        // One stream per prompt set, so that changing one set's size leaves the others as they were.
        var rng = (RNG(seed: config.seed), RNG(seed: config.seed &+ 1), RNG(seed: config.seed &+ 2))
        train = Array(
            TaskPrompt.make(config.trainPrompts, kind: .sum, rng: &rng.0).prefix(config.effectiveTrainPrompts))
        eval = TaskPrompt.make(config.evalPrompts, kind: .sum, rng: &rng.1)
        ood = TaskPrompt.make(config.oodPrompts, kind: .difference, rng: &rng.2)
    }

    var stagesDirectory: URL { out.appendingPathComponent("stages") }
    var dataDirectory: URL { out.appendingPathComponent("data") }

    /// Runs every stage not finished earlier; returns the report (also written as report.json and report.html).
    @discardableResult
    public func run(fresh: Bool = false) throws -> DemoReport {
        let lock = try OutputLock(directory: out)  // one demo per directory
        defer { withExtendedLifetime(lock) {} }
        let fm = FileManager.default
        if fresh { try? fm.removeItem(at: stagesDirectory) }
        try fm.createDirectory(at: stagesDirectory, withIntermediateDirectories: true)
        try fm.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        let n = Self.stages.count
        func title(_ i: Int) -> String { Self.stages[i].1 }
        report.baseline = try stage(0, title(0)) { BaselineResult(base: try evaluate(adapter: nil, against: nil)) }
        report.sft = try stage(1, title(1)) { try runSFT() }
        try mergeSFT()
        report.pairs = try stage(2, title(2)) { try makePairs() }
        report.reward = try stage(3, title(3)) { try runReward() }
        try loadRewardModel()
        report.ppo = try stage(4, title(4)) { try runPPO() }
        report.bestOfN = try stage(5, title(5)) { try runBestOfN() }
        report.dpo = try stage(6, title(6)) { try runDPO() }
        report.grpo = try stage(7, title(7)) { try runGRPO() }
        observer.stage(n, n, title(n - 1))
        try Self.encoder(pretty: true).encode(report).write(
            to: out.appendingPathComponent("report.json"), options: .atomic)
        try Data(ReportHTML.render(report).utf8).write(to: out.appendingPathComponent("report.html"), options: .atomic)
        return report
    }

    // MARK: Stages and resume

    /// Records and report.json: sorted keys; a non-finite figure (a fit that failed) written as a string.
    static func encoder(pretty: Bool = false) -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    struct StageRecord<R: Codable>: Codable {
        var result: R
        var timing: StageTiming
        /// The config values the stage read (`DemoConfig.fingerprint`).
        var fingerprint: String
    }

    /// Runs stage `index` unless its record exists; saves the record atomically when it finishes.
    func stage<R: Codable>(_ index: Int, _ title: String, _ body: () throws -> R) throws -> R {
        let name = Self.stages[index].0
        let file = stagesDirectory.appendingPathComponent(String(format: "%d-%@.json", index + 1, name))
        observer.stage(index + 1, Self.stages.count, title)
        let fingerprint = try config.fingerprint(stage: name, model: baseModel)
        if let data = try? FileContents.read(file) {
            do {
                let record = try Self.decoder().decode(StageRecord<R>.self, from: data)
                if record.fingerprint == fingerprint {
                    observer.log("done in an earlier run (\(file.lastPathComponent)); skipped")
                    report.timings.append(record.timing)
                    return record.result
                }
                observer.log("done in an earlier run with other settings for this stage; running it again")
            } catch {
                observer.log("\(file.path) is not a record this version can read (\(error)); running the stage again")
            }
        }
        if observer.stopRequested() { throw DemoError.interrupted(stage: name) }
        currentStage = name
        try? FileManager.default.removeItem(at: out.appendingPathComponent(name))  // an unfinished attempt
        let start = Date()
        let result = try body()
        let timing = StageTiming(
            stage: name, seconds: Date().timeIntervalSince(start), peakRSSMB: ProcessMemory.peakRSSMegabytes())
        report.timings.append(timing)
        try Self.encoder().encode(StageRecord(result: result, timing: timing, fingerprint: fingerprint)).write(
            to: file, options: .atomic)
        return result
    }

    // MARK: Sampling and evaluation

    struct Reply {
        var tokens: [Int32]
        var text: String
        var finished: Bool
        var gold: Double
        var words: Int
        /// The sampler's log-probability of each token (at the sampling temperature).
        var logProbs: [Float]
    }

    func messages(_ text: String, role: String = "user") -> [[String: String]] { [["role": role, "content": text]] }

    /// The prompt's chat-formatted token ids (encoded once per prompt: evaluations and proxy scoring repeat).
    func encode(_ p: TaskPrompt) throws -> [Int32] {
        if let ids = encoded[p] { return ids }
        let ids = try promptEncoder.encode(PromptExample(.conversation([Message(role: .user, content: p.question)])))
        encoded[p] = ids
        return ids
    }

    /// `n` replies per prompt (greedy when `temperature` is 0), in chunks of at most 32 sequences.
    func replies(
        _ prompts: [TaskPrompt], adapter: LoRAAdapter?, n: Int = 1, temperature: Double, seed: UInt64
    ) throws -> [[Reply]] {
        let rows = prompts.indices.flatMap { Array(repeating: $0, count: n) }
        var out: [Reply] = []
        var start = 0
        while start < rows.count {
            if observer.stopRequested() { throw DemoError.interrupted(stage: currentStage) }
            let chunk = Array(rows[start..<min(start + 32, rows.count)])
            let sampling = SamplingOptions(temperature: Float(temperature), seed: seed &+ UInt64(start) &* 7919)
            let generated = try base.sampleRollouts(
                prompts: try chunk.map { try encode(prompts[$0]) }, adapter: adapter,
                maxNewTokens: config.maxNewTokens, sampling: sampling)
            for (p, (r, logProbs)) in zip(chunk, zip(generated.rollouts, generated.logProbs)) {
                out.append(
                    Reply(
                        tokens: r.completionIDs, text: r.text, finished: r.stopped,
                        gold: GoldJudge.score(r.text, to: prompts[p], finished: r.stopped),
                        words: r.text.split(whereSeparator: \.isWhitespace).count, logProbs: logProbs))
            }
            start += chunk.count
            observer.sampling(start, rows.count)
        }
        return prompts.indices.map { Array(out[($0 * n)..<(($0 + 1) * n)]) }
    }

    /// Greedy replies on the evaluation prompts, and `eval_samples` sampled ones per prompt; win-rates against
    /// `reference` (the evaluation of the policy named `opponent`).
    /// `sampled`: the policy's `sampledReplies` when the caller has them already.
    func evaluate(
        adapter: LoRAAdapter?, against reference: PolicyEvaluation?, opponent: String = "SFT", sampled: [Reply]? = nil
    ) throws -> PolicyEvaluation {
        let r = try replies(eval, adapter: adapter, temperature: 0, seed: config.seed).map { $0[0] }
        var e = Self.evaluation(eval, r, against: reference, opponent: opponent)
        e.sampled = Self.sampledEvaluation(try sampled ?? sampledReplies(adapter: adapter), against: reference?.sampled)
        return e
    }

    /// `eval_samples` replies per evaluation prompt at the demo's temperature, prompt by prompt. One seed for every
    /// policy, so that two policies' samples of a prompt are paired (common random numbers).
    func sampledReplies(adapter: LoRAAdapter?) throws -> [Reply] {
        Array(
            try replies(
                eval, adapter: adapter, n: config.evalSamples, temperature: config.sampleTemperature,
                seed: config.seed &+ 6
            ).joined())
    }

    static func sampledEvaluation(_ r: [Reply], against reference: SampledEvaluation?) -> SampledEvaluation {
        let gold = r.map(\.gold), n = Double(max(1, r.count))
        return SampledEvaluation(
            meanGold: gold.reduce(0, +) / n, goldStdErr: standardError(gold),
            meanWords: r.reduce(0) { $0 + Double($1.words) } / n,
            winRate: reference.map { winRate(gold, $0.gold) }, gold: gold)
    }

    /// Wins + ½ ties of `gold[i]` against `reference[i]`.
    static func winRate(_ gold: [Double], _ reference: [Double]) -> Double {
        zip(gold, reference).reduce(0.0) { $0 + ($1.0 > $1.1 ? 1 : $1.0 == $1.1 ? 0.5 : 0) }
            / Double(max(1, min(gold.count, reference.count)))
    }

    static func evaluation(
        _ prompts: [TaskPrompt], _ r: [Reply], against reference: PolicyEvaluation?, opponent: String? = nil
    ) -> PolicyEvaluation {
        let n = Double(max(1, r.count))
        let samples = zip(prompts, r).map {
            SampleReply(prompt: $0.question, reply: $1.text, gold: $1.gold, words: $1.words)
        }
        return PolicyEvaluation(
            meanGold: r.reduce(0) { $0 + $1.gold } / n,
            correct: Double(zip(prompts, r).filter { GoldJudge.numbersIn($1.text).last == $0.result }.count) / n,
            meanWords: r.reduce(0) { $0 + Double($1.words) } / n,
            winRate: reference.map { winRate(r.map(\.gold), $0.samples.map(\.gold)) },
            opponent: reference == nil ? nil : opponent, samples: samples)
    }

    // MARK: 2. SFT

    /// Writes TRL JSONL (keys sorted, so the same seed writes the same bytes).
    func writeJSONL(_ rows: [[String: Any]], _ name: String) throws -> URL {
        let url = dataDirectory.appendingPathComponent(name)
        let lines = try rows.map {
            String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self)
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: url, options: .atomic)
        return url
    }

    func conversation(_ prompt: TaskPrompt, _ reply: String) -> [[String: String]] {
        messages(prompt.question) + messages(reply, role: "assistant")
    }

    func runSFT() throws -> SFTResult {
        let file = try writeJSONL(
            train.enumerated().map { i, p in ["messages": conversation(p, p.demonstration(style: i))] },
            "sft.jsonl")
        var c = SFTConfig()
        try stageArguments(&c.training, steps: config.sftSteps, learningRate: config.sftLearningRate, batchSize: 4)
        let data = try SFTData.prepare(
            config: c, tokenizer: base.tokenizer, chatTemplate: base.chatTemplate, trainFile: file, evalFile: nil)
        let trainer = try SFTTrainer(
            config: c, model: base, data: data, outputDirectory: out.appendingPathComponent("sft"),
            baseModel: baseModel)
        var loss: [CurvePoint] = []
        try train(trainer) { step, m in if let l = m["loss"] { loss.append(CurvePoint(Double(step), l)) } }
        let adapter = try trainer.exportFinal()
        return SFTResult(
            examples: data.train.count, loss: loss,
            policy: try evaluate(adapter: trainer.adapter, against: report.baseline?.base, opponent: "base"),
            adapter: relative(adapter))
    }

    func relative(_ url: URL) -> String {
        let path = url.standardizedFileURL.path, root = out.standardizedFileURL.path + "/"
        return path.hasPrefix(root) ? String(path.dropFirst(root.count)) : path
    }

    /// Merges the exported SFT adapter into the base: from here on the base is the SFT policy and the reference.
    func mergeSFT() throws {
        guard !sftMerged, let sft = report.sft else { return }
        let dir = out.appendingPathComponent(sft.adapter)
        _ = try ModelLoader.load(adapter: dir, onto: base, name: "sft")
        base.model.merge(adapter: "sft")
        sftMerged = true
    }

    // MARK: 3. Pairs

    func runPairsOf(_ prompts: [TaskPrompt], seed: UInt64) throws -> [(TaskPrompt, Reply, Reply)] {
        let r = try replies(prompts, adapter: nil, n: 2, temperature: config.sampleTemperature, seed: seed)
        return zip(prompts, r).map { ($0, $1[0], $1[1]) }
    }

    func makePairs() throws -> PairsResult {
        let annotators = SimulatedAnnotators(
            temperature: config.annotatorTemperature, flipRate: config.annotatorFlipRate)
        var rng = RNG(seed: config.seed &+ 17)
        var rows: [[String: Any]] = [], agree = 0, decided = 0, dropped = 0
        // A pair of equal replies carries no preference, and an empty reply is not a response (TRL's readers
        // refuse it): both are dropped and counted.
        func usable(_ a: Reply, _ b: Reply) -> Bool {
            a.text != b.text && !a.text.allSatisfy(\.isWhitespace) && !b.text.allSatisfy(\.isWhitespace)
        }
        for (p, a, b) in try runPairsOf(train, seed: config.seed &+ 1) {
            guard usable(a, b) else {
                dropped += 1
                continue
            }
            let aWins = annotators.prefersA(goldA: a.gold, goldB: b.gold, rng: &rng)
            if a.gold != b.gold {
                decided += 1
                if aWins == (a.gold > b.gold) { agree += 1 }
            }
            let (chosen, rejected) = aWins ? (a, b) : (b, a)
            rows.append(pairRow(p, chosen.text, rejected.text))
        }
        _ = try writeJSONL(rows, "pairs.jsonl")
        // Gold-labelled pairs (no noise) for the reward model's accuracy: held-out sums and differences.
        func goldPairs(_ prompts: [TaskPrompt], seed: UInt64, name: String) throws -> Int {
            let labelled = try runPairsOf(prompts, seed: seed).compactMap { p, a, b -> [String: Any]? in
                guard a.gold != b.gold, usable(a, b) else { return nil }
                return a.gold > b.gold ? pairRow(p, a.text, b.text) : pairRow(p, b.text, a.text)
            }
            _ = try writeJSONL(labelled, name)
            return labelled.count
        }
        let heldOut = try goldPairs(eval, seed: config.seed &+ 2, name: "pairs_eval.jsonl")
        let oodCount = try goldPairs(ood, seed: config.seed &+ 3, name: "pairs_ood.jsonl")
        return PairsResult(
            trainPairs: rows.count, labelAgreement: decided > 0 ? Double(agree) / Double(decided) : 0,
            heldOutPairs: heldOut, oodPairs: oodCount, dropped: dropped)
    }

    func pairRow(_ p: TaskPrompt, _ chosen: String, _ rejected: String) -> [String: Any] {
        [
            "prompt": messages(p.question), "chosen": messages(chosen, role: "assistant"),
            "rejected": messages(rejected, role: "assistant"),
        ]
    }

    // MARK: 4. Reward model

    func runReward() throws -> RewardResult {
        var c = RewardConfig()
        try stageArguments(
            &c.training, steps: config.rewardSteps, learningRate: config.rewardLearningRate, batchSize: 8)
        c.evalSteps = 0
        c.training.loraRank = config.rewardLoraRank
        c.training.loraAlpha = Float(2 * config.rewardLoraRank)
        let data = try ComparisonData.prepare(
            training: c.training, maxPromptLength: c.effectiveMaxPromptLength, tokenizer: base.tokenizer,
            chatTemplate: base.chatTemplate, trainFile: dataDirectory.appendingPathComponent("pairs.jsonl"),
            evalFile: report.pairs?.heldOutPairs == 0 ? nil : dataDirectory.appendingPathComponent("pairs_eval.jsonl"))
        let trainer = try RewardTrainer(
            config: c, model: base, data: data, outputDirectory: out.appendingPathComponent("reward"),
            baseModel: baseModel)
        var loss: [CurvePoint] = [], accuracy: [CurvePoint] = []
        try train(trainer) { step, m in
            if let l = m["loss"] { loss.append(CurvePoint(Double(step), l)) }
            if let a = m["accuracy"] { accuracy.append(CurvePoint(Double(step), a)) }
        }
        let dir = try trainer.exportFinal()
        let rm = trainer.rewardModel
        let ood =
            report.pairs?.oodPairs == 0
            ? nil
            : try ComparisonData.prepare(
                training: c.training, maxPromptLength: c.effectiveMaxPromptLength, tokenizer: base.tokenizer,
                chatTemplate: base.chatTemplate, trainFile: dataDirectory.appendingPathComponent("pairs_ood.jsonl"),
                evalFile: nil)
        // Bias: how the proxy and the gold judge follow length, over fresh SFT samples on the held-out prompts.
        let samples = try replies(
            eval, adapter: nil, n: 2, temperature: config.sampleTemperature, seed: config.seed &+ 4
        )
        .joined()
        let proxy = try rm.scores(
            try zip(eval.indices.flatMap { [$0, $0] }, samples).map { try encode(eval[$0]) + $1.tokens })
        let words = samples.map { Double($0.words) }
        return RewardResult(
            loss: loss, trainAccuracy: accuracy,
            heldOutAccuracy: data.eval.isEmpty ? 0 : try rm.evaluate(data.eval).accuracy,
            oodAccuracy: try ood.map { $0.train.isEmpty ? 0 : try rm.evaluate($0.train).accuracy } ?? 0,
            proxyLengthCorrelation: pearson(proxy, words), goldLengthCorrelation: pearson(samples.map(\.gold), words),
            directory: relative(dir))
    }

    func loadRewardModel() throws {
        guard rewardModel == nil, let r = report.reward else { return }
        rewardModel = try RewardModel.load(
            reward: out.appendingPathComponent(r.directory), onto: base, baseName: baseModel)
    }

    /// The proxy reward (the reward model's normalised score) as an RL reward, recording gold and length beside it.
    final class Recorder {
        var batches: [(proxy: Double, gold: Double, goldStdErr: Double, words: Double)] = []
    }

    func proxyReward(recorder: Recorder) throws -> RewardFunction {
        guard let rm = rewardModel else { preconditionFailure("the reward stage comes first") }
        var prompts: [[Int32]: TaskPrompt] = [:]
        for p in train { prompts[try encode(p)] = p }
        return RewardFunction(
            name: "proxy",
            batch: { rollouts in
                let scores = try rm.scores(rollouts.map { $0.promptIDs + $0.completionIDs }).map(rm.normalized)
                var gold: [Double] = [], words = 0.0
                for r in rollouts {
                    guard let p = prompts[r.promptIDs] else { preconditionFailure("a rollout of an unknown prompt") }
                    gold.append(GoldJudge.score(r.text, to: p, finished: r.stopped))
                    words += Double(r.text.split(whereSeparator: \.isWhitespace).count)
                }
                let n = Double(max(1, rollouts.count))
                recorder.batches.append(
                    (scores.reduce(0, +) / n, gold.reduce(0, +) / n, standardError(gold), words / n))
                return scores
            })
    }

    func promptFile() throws -> URL {
        try writeJSONL(train.map { ["prompt": messages($0.question)] }, "prompts.jsonl")
    }

    // MARK: 5. PPO

    func runPPO() throws -> RLResult {
        var c = PPOConfig()
        c.numMiniBatches = 2
        c.numPPOEpochs = config.ppoEpochs
        c.responseLength = config.maxNewTokens
        c.klCoef = config.ppoKlCoef
        c.temperature = config.sampleTemperature
        c.logSamplesEvery = max(1, config.ppoIterations / 4)
        try stageArguments(
            &c.training, steps: config.ppoIterations * c.stepsPerIteration, learningRate: config.ppoLearningRate,
            batchSize: config.ppoBatchSize / 2, warmup: 0)
        // A constant rate: the late iterations keep moving the policy (weak KL control plus long training is the
        // regime where Gao et al. see the proxy over-optimised); a decaying one would freeze it near the start.
        c.training.lrSchedulerType = .constant
        let data = try PromptData.prepare(
            training: c.training, maxCompletionLength: c.responseLength, tokenizer: base.tokenizer,
            chatTemplate: base.chatTemplate, file: try promptFile())
        let recorder = Recorder()
        let trainer = try PPOTrainer(
            config: c, model: base, data: data, reward: try proxyReward(recorder: recorder), rewardModel: rewardModel,
            outputDirectory: out.appendingPathComponent("ppo"), baseModel: baseModel)
        var points: [OptimisationPoint] = [], loss: [CurvePoint] = []
        // Held-out points: the policy's sampled replies to the evaluation prompts, and their KL to the SFT policy,
        // at the start (d = 0) and after iterations 1, 2, 4, 8, … (geometric, as d grows roughly with log t).
        var heldOut = [try heldOutPoint(adapter: nil, iteration: 0)]
        let s = c.stepsPerIteration
        try train(trainer) { step, m in
            if let l = m["loss"] { loss.append(CurvePoint(Double(step), l)) }
            if let kl = m["objective/kl"], let batch = recorder.batches.last {
                points.append(
                    OptimisationPoint(
                        x: Double(points.count), kl: kl, d: max(0, kl).squareRoot(), proxy: batch.proxy,
                        gold: batch.gold, goldStdErr: batch.goldStdErr, words: batch.words,
                        klCoef: m["objective/kl_coef"]))
            }
            let done = step / s
            if step % s == 0 && done & (done - 1) == 0 && done < config.ppoIterations {
                heldOut.append(try heldOutPoint(adapter: trainer.adapter, iteration: done))
            }
        }
        // The final policy: its held-out point, and the same samples in its evaluation.
        let final = try sampledReplies(adapter: trainer.adapter)
        heldOut.append(try heldOutPoint(adapter: trainer.adapter, iteration: config.ppoIterations, replies: final))
        let policy = try evaluate(adapter: trainer.adapter, against: report.sft?.policy, sampled: final)
        // Ship it: the PPO adapter and critic (PEFT), and SFT + PPO merged into one GGUF.
        let exported = try trainer.exportFinal()
        let gguf = out.appendingPathComponent("ppo/rlhfkit-demo-ppo-q8_0.gguf")
        try GGUFExport.saveMerged(
            model: base.model, adapter: trainer.adapter!, tokenizer: base.tokenizer,
            chatTemplate: base.chatTemplate?.source, type: .q8_0, name: "rlhfkit-demo-ppo", to: gguf, overwrite: true)
        return RLResult(
            points: points, heldOut: heldOut, fit: Self.fit(.rl, heldOut),
            overOptimisation: OverOptimisation.read(heldOut), policy: policy, loss: loss,
            exports: [relative(exported), relative(gguf)])
    }

    /// The policy's sampled replies to the evaluation prompts (`replies` when the caller has them): gold, proxy,
    /// win-rate against SFT, and KL(π‖π_SFT) estimated on those samples (k1 summed over each reply's tokens, at the
    /// sampling temperature, as PPO's `objective/kl`; Ziegler et al. 2019 eq. 2's penalty term).
    func heldOutPoint(adapter: LoRAAdapter?, iteration: Int, replies given: [Reply]? = nil) throws
        -> OptimisationPoint
    {
        guard let rm = rewardModel else { preconditionFailure("the reward stage comes first") }
        let r = try given ?? sampledReplies(adapter: adapter)
        let sft = report.sft?.policy.sampled
        let e = Self.sampledEvaluation(r, against: sft)
        let k = config.evalSamples
        let prompts = try r.indices.map { try encode(eval[$0 / k]) }
        let proxy = try rm.scores(zip(prompts, r).map { $0 + $1.tokens }).map(rm.normalized)
        // The SFT policy is the reference itself: its KL is 0 by definition (the estimate would be rounding).
        let kl = adapter == nil ? 0 : try meanKL(prompts: prompts, r)
        var gainStdErr: Double?
        if let sft, sft.gold.count == r.count { gainStdErr = standardError(zip(r, sft.gold).map { $0.gold - $1 }) }
        return OptimisationPoint(
            x: Double(iteration), kl: kl, d: max(0, kl).squareRoot(),
            proxy: proxy.reduce(0, +) / Double(max(1, proxy.count)), gold: e.meanGold, goldStdErr: e.goldStdErr,
            words: e.meanWords, klCoef: nil, winRate: e.winRate, gainStdErr: gainStdErr)
    }

    /// Mean over the replies of Σ_t log π(y_t) − log π_SFT(y_t): the sampler's log-probs against the reference's
    /// (the merged base without an adapter), scored at the same temperature.
    func meanKL(prompts: [[Int32]], _ r: [Reply]) throws -> Double {
        let temperature = Float(config.sampleTemperature)
        let chunks = stride(from: 0, to: r.count, by: 8).map { $0..<min($0 + 8, r.count) }
        let batches = chunks.map { range in
            LabeledBatch(
                prompts: Array(prompts[range]), completions: range.map { r[$0].tokens }, padID: base.padTokenID)
        }
        guard let largest = batches.map(\.batch.tokenCount).max() else { return 0 }
        // One set of activations, sized for the largest chunk, serves every chunk.
        let acts = LlamaActivations(config: base.model.config, batchSize: 1, length: largest, checkpointed: true)
        var total = 0.0
        for (range, batch) in zip(chunks, batches) {
            let reference = try base.model.score(batch, adapter: nil, into: acts, temperature: temperature)
            for (row, i) in range.enumerated() {
                for (policy, ref) in zip(r[i].logProbs, reference.tokenLogProbs(row: row)) {
                    total += Double(policy) - Double(ref)
                }
            }
        }
        return total / Double(max(1, r.count))
    }

    /// Gao et al.'s form fitted to the gold gain over the first point (the starting policy, d = 0).
    static func fit(_ form: GaoFit.Form, _ points: [OptimisationPoint]) -> GaoFit? {
        guard let first = points.first else { return nil }
        return GaoFit.fit(form, d: points.map(\.d), r: points.map { $0.gold - first.gold })
    }

    // MARK: 6. Best-of-n

    func runBestOfN() throws -> BestOfNResult {
        guard let rm = rewardModel else { preconditionFailure("the reward stage comes first") }
        let prompts = Array(eval.prefix(config.bonPrompts)), n = config.bonMaxN
        let samples = try replies(
            prompts, adapter: nil, n: n, temperature: config.sampleTemperature, seed: config.seed &+ 5)
        var proxy: [[Double]] = []
        for (i, group) in samples.enumerated() {
            let prompt = try encode(prompts[i])
            proxy.append(try rm.scores(group.map { prompt + $0.tokens }).map(rm.normalized))
        }
        // For each n, the N samples of a prompt form N/n disjoint groups; the proxy's pick of each is averaged.
        var points: [OptimisationPoint] = []
        var size = 1
        var picks: [Reply] = []
        while size <= n {
            var p = 0.0, g: [Double] = [], w = 0.0, count = 0.0
            picks = []
            for (i, group) in samples.enumerated() {
                for start in stride(from: 0, to: n, by: size) {
                    let best = (start..<(start + size)).max { proxy[i][$0] < proxy[i][$1] }!
                    p += proxy[i][best]
                    g.append(group[best].gold)
                    w += Double(group[best].words)
                    count += 1
                    if start == 0 { picks.append(group[best]) }
                }
            }
            let kl = bestOfNKL(size)
            points.append(
                OptimisationPoint(
                    x: Double(size), kl: kl, d: kl.squareRoot(), proxy: p / count, gold: g.reduce(0, +) / count,
                    goldStdErr: standardError(g), words: w / count, klCoef: nil))
            size *= 2
        }
        // The largest n's picks against one plain sample of the same prompt.
        let single = Self.evaluation(prompts, samples.map { $0[0] }, against: nil)
        return BestOfNResult(
            points: points, fit: Self.fit(.bestOfN, points), overOptimisation: OverOptimisation.read(points),
            policy: Self.evaluation(prompts, picks, against: single, opponent: "one SFT sample"))
    }

    // MARK: 7. DPO

    func runDPO() throws -> PreferenceResult {
        var c = DPOConfig()
        c.beta = config.dpoBeta
        try stageArguments(&c.training, steps: config.dpoSteps, learningRate: config.dpoLearningRate, batchSize: 4)
        let data = try PreferenceData.prepare(
            training: c.training, maxPromptLength: c.effectiveMaxPromptLength, tokenizer: base.tokenizer,
            chatTemplate: base.chatTemplate, trainFile: dataDirectory.appendingPathComponent("pairs.jsonl"),
            evalFile: nil)
        let trainer = try DPOTrainer(
            config: c, model: base, data: data, outputDirectory: out.appendingPathComponent("dpo"), baseModel: baseModel
        )
        var loss: [CurvePoint] = []
        try train(trainer) { step, m in if let l = m["loss"] { loss.append(CurvePoint(Double(step), l)) } }
        return PreferenceResult(loss: loss, policy: try evaluate(adapter: trainer.adapter, against: report.sft?.policy))
    }

    // MARK: 8. GRPO

    func runGRPO() throws -> GRPOResult {
        var c = GroupRLConfig()
        c.numGenerations = config.grpoNumGenerations
        c.maxCompletionLength = config.maxNewTokens
        c.beta = config.grpoBeta
        c.temperature = config.sampleTemperature
        try stageArguments(
            &c.training, steps: config.grpoSteps, learningRate: config.grpoLearningRate,
            batchSize: 4 * config.grpoNumGenerations, warmup: 0)
        let data = try PromptData.prepare(
            training: c.training, maxCompletionLength: c.maxCompletionLength, tokenizer: base.tokenizer,
            chatTemplate: base.chatTemplate, file: try promptFile())
        let recorder = Recorder()
        let trainer = try GroupRLTrainer(
            config: c, model: base, data: data, reward: try proxyReward(recorder: recorder),
            outputDirectory: out.appendingPathComponent("grpo"), baseModel: baseModel)
        var points: [OptimisationPoint] = []
        try train(trainer) { step, m in
            guard let batch = recorder.batches.last else { return }
            let kl = m["kl"] ?? 0
            points.append(
                OptimisationPoint(
                    x: Double(step), kl: kl, d: max(0, kl).squareRoot(), proxy: batch.proxy, gold: batch.gold,
                    goldStdErr: batch.goldStdErr, words: batch.words, klCoef: nil))
        }
        return GRPOResult(points: points, policy: try evaluate(adapter: trainer.adapter, against: report.sft?.policy))
    }

    // MARK: Training

    /// What every training stage shares: `steps` optimizer steps of `batchSize` rows of at most 128 tokens (or the
    /// longest prompt plus max_new_tokens), each
    /// step logged, one checkpoint at the end, the demo's seed, warm-up over the first tenth unless `warmup` says.
    func stageArguments(
        _ t: inout TrainingArguments, steps: Int, learningRate: Double, batchSize: Int, warmup: Int? = nil
    ) throws {
        t.maxSteps = steps
        t.batchSize = batchSize
        // 128, or more when a long max_new_tokens would otherwise cut prompts (the gold judge looks them up whole).
        let longest = try (train + eval + ood).map { try encode($0).count }.max() ?? 0
        t.maxLength = max(128, longest + config.maxNewTokens)
        t.learningRate = Float(learningRate)
        t.warmupSteps = warmup ?? max(1, steps / 10)
        t.loggingSteps = 1
        t.saveSteps = steps
        t.seed = config.seed
    }

    /// Trains with the observer's rendering; `onStep` sees each logged step's metrics. A stop request ends the
    /// stage with an error (its record is not written, so the next run redoes it).
    func train<T: Trainer>(_ trainer: T, onStep: (Int, Metrics) throws -> Void) throws {
        var failure: (any Error)?
        try trainer.train(stopRequested: observer.stopRequested) { event in
            observer.trainerEvent(event)
            if case let .step(step, _, metrics) = event {
                do { try onStep(step, metrics) } catch {
                    failure = error
                    return .stop
                }
            }
            return .proceed
        }
        if let failure { throw failure }
        if observer.stopRequested() { throw DemoError.interrupted(stage: currentStage) }
    }
}

// Supervised fine-tuning: next-token cross-entropy on the masked (assistant / completion) tokens,
//   L = −(1/N) Σ_{t ∈ mask} log p(x_t | x_<t),   N = masked tokens of the whole accumulated batch,
// so 1 batch × 8 and 8 micro-batches × 1 give the same gradient. AdamW (Loshchilov & Hutter 2019,
// Alg. 2), global-norm clipping, warm-up + decay schedule. LoRA (frozen base) or full fine-tune.

import Datasets
import ModelExport
import Foundation
import ModelFormats
import Models
import TensorCore

public final class SFTTrainer {
    public let config: SFTConfig
    public let loaded: LoadedModel
    public let data: SFTData
    public let outputDirectory: URL
    public let baseModel: String
    /// The adapter name used for LoRA runs.
    public static let adapterName = "default"

    let trainable: ParameterStore
    let optimizer: AdamW
    let padID: Int32
    var loader: DataLoader
    var rng: RNG
    var step = 0
    var numTokens = 0.0
    let acts: LlamaActivations
    /// Whether layers are recomputed in backward (configured, or forced by the activation budget).
    public let usesActivationCheckpointing: Bool
    /// Saved-activation memory above which activation checkpointing turns on by itself.
    public static let activationBudgetBytes = 2 << 30

    public init(config: SFTConfig, model loaded: LoadedModel, data: SFTData, outputDirectory: URL, baseModel: String) throws {
        try config.validate()
        guard !data.train.isEmpty else { throw ConfigError.invalid(field: "train data", value: "0 examples", expected: "at least one") }
        self.config = config
        self.loaded = loaded
        self.data = data
        self.outputDirectory = outputDirectory
        self.baseModel = baseModel
        rng = RNG(seed: config.seed)
        let model = loaded.model
        if let lora = config.lora {
            guard !model.weights.isTrainable else {
                throw ConfigError.invalid(field: "lora_rank", value: "\(config.loraRank)", expected: "a frozen base model (load it with trainable: false)")
            }
            let adapter = try model.addAdapter(named: Self.adapterName, config: lora, seed: rng.next())
            model.activeAdapter = Self.adapterName
            trainable = adapter.store
        } else {
            guard model.weights.isTrainable else {
                throw ConfigError.invalid(field: "lora_rank", value: "0", expected: "a trainable base model for a full fine-tune")
            }
            trainable = model.weights
        }
        optimizer = AdamW(store: trainable, config: config.adamW,
                          decayFilter: { !$0.hasSuffix("norm.weight") && !$0.hasSuffix(".bias") })
        padID = Int32(loaded.tokenizer.padTokenID ?? loaded.tokenizer.eosTokenID ?? 0)
        var loaderConfig = DataLoaderConfig()
        loaderConfig.batchSize = config.batchSize
        loaderConfig.seed = config.seed
        loaderConfig.packing = config.packing ? .wrapped : .none
        loaderConfig.packedLength = config.maxLength
        loaderConfig.groupsByLength = config.groupByLength && !config.packing
        loader = try DataLoader(examples: data.train, config: loaderConfig)
        // Activation checkpointing is bit-identical, so it is switched on by itself when the saved activations
        // of a micro-batch would exceed `activationBudgetBytes` (e.g. TRL's defaults, 8 × 1024 tokens: ~5.7 GB).
        let c = model.config
        let perTokenFloats = 3 * c.hiddenSize + c.qDim * 2 + c.kvDim * 2 + 2 * c.intermediateSize + 2
        let estimate = config.batchSize * config.maxLength * c.layerCount * perTokenFloats * 4
        usesActivationCheckpointing = config.activationCheckpointing || estimate > Self.activationBudgetBytes
        acts = LlamaActivations(config: c, batchSize: config.batchSize, length: config.maxLength,
                                checkpointed: usesActivationCheckpointing)
    }

    /// Optimizer steps of the whole run.
    public var totalSteps: Int {
        if config.maxSteps > 0 { return config.maxSteps }
        return max(1, config.numTrainEpochs * loader.batchesInEpoch / config.gradientAccumulationSteps)
    }

    var schedule: LRSchedule {
        let warmup = config.warmupSteps > 0 ? config.warmupSteps : Int((config.warmupRatio * Float(totalSteps)).rounded(.up))
        return LRSchedule(kind: config.lrSchedulerType, peak: config.learningRate, warmupSteps: warmup, totalSteps: totalSteps)
    }

    /// Trains to `totalSteps`, or until `onEvent` returns `.stop` or `stopRequested()` (checked every
    /// step, e.g. after Ctrl-C) turns true; stopping saves a checkpoint first.
    /// `resume` is a checkpoint or output directory of an earlier run with the same config.
    @discardableResult
    public func train(resume: URL? = nil, stopRequested: () -> Bool = { false },
                      onEvent: (TrainerEvent) -> TrainingControl = { _ in .proceed }) throws -> Metrics {
        if let resume { try restore(from: resume) }
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        let log = try MetricsLog(url: outputDirectory.appendingPathComponent("metrics.jsonl"))
        let total = totalSteps
        var window = (loss: 0.0, correct: 0.0, counted: 0.0, steps: 0, gradNorm: 0.0, tokens: 0.0)
        var windowStart = Date()
        var last: Metrics = [:]
        while step < total {
            let lr = schedule.learningRate(at: step)
            let result = trainStep()
            try optimizerStep(lr: lr)
            step += 1
            numTokens += result.tokens
            window.loss += result.lossSum
            window.correct += result.correct
            window.counted += result.counted
            window.gradNorm += lastGradNorm
            window.tokens += result.tokens
            window.steps += 1
            var control = stopRequested() ? TrainingControl.stop : .proceed
            if step % config.loggingSteps == 0 || step == total || control == .stop {
                let elapsed = Date().timeIntervalSince(windowStart)
                last = ["step": Double(step), "loss": window.loss / max(window.counted, 1), "learning_rate": Double(lr),
                        "grad_norm": window.gradNorm / Double(window.steps), "num_tokens": numTokens,
                        "mean_token_accuracy": window.correct / max(window.counted, 1),
                        "epoch": Double(loader.position.epoch) + Double(loader.position.batch) / Double(max(loader.batchesInEpoch, 1)),
                        "tokens_per_second": window.tokens / max(elapsed, 1e-9)]
                try log.append(last)
                if onEvent(.step(step: step, totalSteps: total, metrics: last)) == .stop { control = .stop }
                window = (0, 0, 0, 0, 0, 0)
                windowStart = Date()
            }
            if !data.eval.isEmpty && ((config.evalSteps > 0 && step % config.evalSteps == 0) || step == total) {
                var metrics = evaluate()
                metrics["step"] = Double(step)
                try log.append(metrics, kind: "eval")
                if onEvent(.evaluation(step: step, metrics: metrics)) == .stop { control = .stop }
                windowStart = Date()  // throughput excludes evaluation time
            }
            if step % config.saveSteps == 0 || step == total || control == .stop {
                let dir = try saveCheckpoint()
                _ = onEvent(.checkpointSaved(step: step, directory: dir))
            }
            if control == .stop { break }
        }
        return last
    }

    struct StepResult { var lossSum = 0.0, correct = 0.0, counted = 0.0, tokens = 0.0 }

    /// Forward + backward over the accumulated micro-batches of one optimizer step.
    func trainStep() -> StepResult {
        let micro = (0..<config.gradientAccumulationSteps).map { _ in loader.next() }
        let collated = micro.map { collate(tokens: $0.tokens, lossMask: $0.lossMask) }
        let counted = collated.reduce(0) { $0 + $1.counted }
        var result = StepResult()
        if !gradientsAreZero { trainable.zeroGradients() }
        gradientsAreZero = false
        let model = loaded.model, c = model.config
        for (i, b) in collated.enumerated() where b.counted > 0 {
            acts.isTraining = true
            acts.dropoutSeed = config.seed &+ UInt64(step) &* 1_000_003 &+ UInt64(i)
            let hidden = model.forward(b.batch, into: acts)
            let n = b.batch.tokenCount
            let dHidden = Scratch.buffer("sft.dHidden", count: n * c.hiddenSize)  // fully written by the loss
            var predictions = [Int32](repeating: -1, count: n)
            let dLogp = [Float](repeating: -1 / Float(counted), count: n)
            let sum = b.targets.withUnsafeBufferPointer { t in
                predictions.withUnsafeMutableBufferPointer { p in
                    TokenLogProbs.forwardBackward(dHidden: dHidden.pointer, dWeight: model.outputWeightGradient, logProbs: nil,
                                                  dLogProbs: dLogp, hidden: hidden.pointer, weight: model.outputWeight,
                                                  targets: t.baseAddress!, rows: n, channels: c.hiddenSize,
                                                  vocabulary: c.vocabularySize, predictions: p.baseAddress)
                }
            }
            model.backward(dOutput: dHidden.pointer, acts: acts)
            result.lossSum -= sum
            for j in 0..<n where b.targets[j] >= 0 && predictions[j] == b.targets[j] { result.correct += 1 }
            result.tokens += Double(b.realTokens)
        }
        result.counted = Double(counted)
        return result
    }

    var lastGradNorm = 0.0
    /// True while the gradient buffer holds zeros (fresh, or just consumed by the optimizer, which zeroes
    /// what it reads), so a step skips the separate zeroing pass.
    var gradientsAreZero = false

    func optimizerStep(lr: Float) throws {
        let (norm, factor) = config.maxGradNorm > 0 ? GradientClipping.clipFactor([trainable], maxNorm: config.maxGradNorm)
                                                    : (GradientClipping.globalNorm([trainable]), 1)
        guard norm.isFinite else {
            throw ConfigError.invalid(field: "gradients", value: "\(norm) at step \(step + 1)",
                                      expected: "finite values (lower learning_rate or check the data)")
        }
        lastGradNorm = Double(norm)
        optimizer.update(learningRate: lr, gradientScale: factor, zeroingGradients: true)
        gradientsAreZero = true
    }

    struct Collated { let batch: TokenBatch; let targets: [Int32]; let counted: Int; let realTokens: Int }

    /// Right-pads rows and shifts the loss mask into next-token targets (−100 = not trained).
    func collate(tokens rows: [[Int32]], lossMask: [[Bool]]) -> Collated {
        let batch = TokenBatch(rows: rows, padID: padID)
        var targets = [Int32](repeating: -100, count: batch.tokenCount)
        var counted = 0
        for (r, row) in rows.enumerated() {
            for t in 0..<max(0, row.count - 1) where lossMask[r][t + 1] {
                targets[r * batch.length + t] = row[t + 1]
                counted += 1
            }
        }
        return Collated(batch: batch, targets: targets, counted: counted, realTokens: rows.reduce(0) { $0 + $1.count })
    }

    /// Mean loss and token accuracy over the eval examples (dropout off).
    public func evaluate() -> Metrics {
        var lossSum = 0.0, correct = 0.0, counted = 0.0
        let model = loaded.model, c = model.config
        var start = 0
        while start < data.eval.count {
            let chunk = Array(data.eval[start..<min(start + config.batchSize, data.eval.count)])
            start += chunk.count
            let b = collate(tokens: chunk.map(\.ids), lossMask: chunk.map(\.lossMask))
            acts.isTraining = false
            let hidden = model.forward(b.batch, into: acts)
            let n = b.batch.tokenCount
            let lp = FloatBuffer(count: n), lse = FloatBuffer(count: n)
            var predictions = [Int32](repeating: -1, count: n)
            b.targets.withUnsafeBufferPointer { t in
                predictions.withUnsafeMutableBufferPointer { p in
                    TokenLogProbs.forward(logProbs: lp.pointer, lse: lse.pointer, hidden: hidden.pointer, weight: model.outputWeight,
                                          targets: t.baseAddress!, rows: n, channels: c.hiddenSize, vocabulary: c.vocabularySize,
                                          predictions: p.baseAddress)
                }
            }
            for j in 0..<n where b.targets[j] >= 0 {
                lossSum -= Double(lp.pointer[j])
                counted += 1
                if predictions[j] == b.targets[j] { correct += 1 }
            }
        }
        return ["eval_loss": lossSum / max(counted, 1), "eval_mean_token_accuracy": correct / max(counted, 1), "eval_tokens": counted]
    }

    public var trainableParameterCount: Int { trainable.parameterCount }

    /// Writes the result: the LoRA adapter in PEFT format (`adapter/`) or the full model as a
    /// Hugging Face directory (`model/`). Returns its directory.
    public func exportFinal() throws -> URL {
        let model = loaded.model
        if config.lora != nil, let adapter = model.adapters[Self.adapterName] {
            let dir = outputDirectory.appendingPathComponent("adapter")
            try PEFTAdapter.save(adapter, baseModel: baseModel, to: dir, overwrite: true)
            return dir
        }
        let dir = outputDirectory.appendingPathComponent("model")
        try HFCheckpoint.save(model: model, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate?.source, to: dir, overwrite: true)
        return dir
    }

    // MARK: checkpoints

    func state() -> TrainerState {
        TrainerState(step: step, totalSteps: totalSteps, dataPosition: loader.position, optimizerStep: optimizer.step,
                     numTokens: numTokens, rngState: rng.state, tokenizerFingerprint: loaded.tokenizer.fingerprint,
                     baseModel: baseModel, trainable: config.lora == nil ? "full" : "lora")
    }

    func configJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(config)
    }

    @discardableResult
    public func saveCheckpoint() throws -> URL {
        let peft = config.lora.map { [PEFTAdapter.configFileName: PEFTAdapter.configurationData($0, baseModel: baseModel)] } ?? [:]
        return try Checkpoint.save(state: state(), configJSON: try configJSON(), weights: trainable, optimizer: optimizer,
                                   extraFiles: peft, to: outputDirectory, keep: config.saveTotalLimit)
    }

    func restore(from url: URL) throws {
        let dir = try Checkpoint.resolve(url)
        let (saved, savedConfig) = try Checkpoint.readState(dir)
        let file = dir.appendingPathComponent(Checkpoint.configFile).path
        let theirs = try JSONDecoder().decode(SFTConfig.self, from: savedConfig)
        guard theirs == config else {
            throw CheckpointError.mismatch(file: file, field: "config", expected: "the same resolved config", found: "a different one",
                                           hint: "resume with the checkpoint's config (--config \(file)).")
        }
        guard saved.tokenizerFingerprint == loaded.tokenizer.fingerprint else {
            throw CheckpointError.mismatch(file: dir.appendingPathComponent(Checkpoint.stateFile).path, field: "tokenizer fingerprint",
                                           expected: loaded.tokenizer.fingerprint.prefix(12) + "…", found: saved.tokenizerFingerprint.prefix(12) + "…",
                                           hint: "resume with the model the checkpoint was trained from (\(saved.baseModel)).")
        }
        try Checkpoint.restore(dir, state: saved, weights: trainable, optimizer: optimizer)
        loader = try DataLoader(examples: data.train, config: loader.config, position: saved.dataPosition)
        step = saved.step
        numTokens = saved.numTokens
        guard saved.rngState.count == 4 else {
            throw CheckpointError.invalidState(file: dir.appendingPathComponent(Checkpoint.stateFile).path, reason: "rngState must hold 4 words")
        }
        rng = RNG(state: saved.rngState)
    }
}

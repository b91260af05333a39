// The one training loop every trainer runs: per optimizer step, the trainer's objective accumulates
// gradients over `gradient_accumulation_steps` micro-batches; then global-norm clipping over every
// trainable group (Pascanu et al. 2013, Alg. 1), AdamW per group (Loshchilov & Hutter 2019, Alg. 2) at
// the warm-up + decay schedule's rate; metrics every `logging_steps` (metrics.jsonl, TRL's names),
// evaluation every `eval_steps`, atomic checkpoints every `save_steps`, and a stop request (Ctrl-C, an
// event handler) finishing the step and saving first. Resume restores weights, moments, data position,
// step and RNG, so a resumed run is bit-identical to an uninterrupted one, however the earlier run ended
// (`scripts/kill-test.sh` kills trainers with SIGKILL mid-step and mid-save). One run per output directory
// (a lock); a NaN/Inf gradient stops the run before it touches the weights, or is skipped and counted.
//
// A trainer = a `TrainerConfig`, a data source and a `TrainingObjective` (its step / loss function).

import Datasets
import Distributed
import Foundation
import ModelExport
import Models
import TensorCore

/// A named set of trainable parameters (an adapter's A/B, a scalar head, the full weights) with its own
/// AdamW moments in the checkpoint.
public struct ParameterGroup: @unchecked Sendable {
    public let name: String
    public let store: ParameterStore
    /// Prefix of the group's tensor names in checkpoint files (keeps names unique across groups and, for
    /// a head beside a LoRA adapter, in PEFT's naming).
    public let filePrefix: String
    /// This group's learning rate relative to the schedule's.
    public let learningRateScale: Float
    /// Which parameters get weight decay (by default: not norms, not biases; transformers' rule).
    public let decays: (String) -> Bool

    public init(
        name: String, store: ParameterStore, filePrefix: String = "", learningRateScale: Float = 1,
        decays: @escaping (String) -> Bool = { !$0.hasSuffix("norm.weight") && !$0.hasSuffix(".bias") }
    ) {
        self.name = name
        self.store = store
        self.filePrefix = filePrefix
        self.learningRateScale = learningRateScale
        self.decays = decays
    }
}

/// Metric sums over micro-batches and steps: a logged metric is Σ sum / Σ weight over the logging window
/// (e.g. loss summed over tokens with the token count as weight, so windows of unequal steps average right).
public struct MetricSums: Sendable {
    var entries: [String: (sum: Double, weight: Double)] = [:]
    /// Real (non-pad) tokens processed: `num_tokens` and throughput.
    public var tokens = 0.0

    public init() {}

    public mutating func add(_ name: String, _ sum: Double, weight: Double = 1) {
        let e = entries[name] ?? (0, 0)
        entries[name] = (e.sum + sum, e.weight + weight)
    }

    /// A value every rank computed alike (e.g. from gathered rollouts): rank 0's counts, the others add weight 0 so
    /// the ranks report the same names and the sum over them is the one-process record.
    public mutating func addOnce(_ name: String, _ value: Double, shard: Shard) {
        add(name, shard.rank == 0 ? value : 0, weight: shard.rank == 0 ? 1 : 0)
    }

    public mutating func merge(_ other: MetricSums) {
        for (k, v) in other.entries { add(k, v.sum, weight: v.weight) }
        tokens += other.tokens
    }

    /// Each metric's weighted mean; a metric with no weight (no example of its kind in the window) is left out.
    public var means: Metrics { entries.filter { $0.value.weight > 0 }.mapValues { $0.sum / $0.weight } }

    /// Sums every entry and the token count over the ranks (each rank reported its micro-batches only).
    mutating func allReduce(_ world: any Communicator) throws {
        guard world.size > 1 else { return }
        let keys = entries.keys.sorted()
        try world.expectSame(
            fnv1a(Data(keys.joined(separator: "\u{1}").utf8)),
            "metric names (\(keys.joined(separator: ", ")) on rank \(world.rank))")
        var flat = keys.flatMap { [entries[$0]!.sum, entries[$0]!.weight] } + [tokens]
        try world.allReduceSum(&flat)
        for (i, k) in keys.enumerated() { entries[k] = (flat[2 * i], flat[2 * i + 1]) }
        tokens = flat[2 * keys.count]
    }
}

/// What a trainer contributes to the loop: its data stream and its step.
public protocol TrainingObjective: AnyObject {
    /// Micro-batches in one pass over the training data.
    var batchesPerEpoch: Int { get }
    /// Where the training data stream stands (saved in checkpoints).
    var dataPosition: DataLoaderPosition { get }
    /// Continues the data stream from a checkpoint's position.
    func restore(dataPosition: DataLoaderPosition) throws
    /// Forward and backward over the micro-batches of optimizer step `step` (0-based), adding gradients to the
    /// groups' stores (zero on entry); returns the step's metric sums. Data-parallel: every rank draws all
    /// `microBatches` (keeping the data stream in step) but computes only those `shard` owns, with the normalisers of
    /// the whole step, so the sum over the ranks is the one-process gradient (`Shard.whole`: all of them).
    func accumulateGradients(step: Int, microBatches: Int, shard: Shard) throws -> MetricSums
    /// Evaluation metrics (`eval_…` names), nil when there is no evaluation data.
    func evaluate() throws -> Metrics?
    /// Further state a resume needs beyond weights, moments, data position and RNG (e.g. PPO's rollout buffer
    /// and KL controller), as files written into every checkpoint. None by default.
    func checkpointFiles() throws -> [String: Data]
    /// Reads back what `checkpointFiles` wrote, from checkpoint directory `directory`.
    func restore(checkpoint directory: URL) throws
}

extension TrainingObjective {
    /// One process's step: every micro-batch.
    public func accumulateGradients(step: Int, microBatches: Int) throws -> MetricSums {
        try accumulateGradients(step: step, microBatches: microBatches, shard: .whole)
    }
    public func checkpointFiles() throws -> [String: Data] { [:] }
    public func restore(checkpoint directory: URL) throws {}
}

public final class TrainingLoop<Config: TrainerConfig>: @unchecked Sendable {
    public let config: Config
    public let groups: [ParameterGroup]
    public let optimizers: [AdamW]
    public let outputDirectory: URL
    /// What checkpoints record about the run (base model, tokenizer fingerprint, file layout).
    public let identity: CheckpointIdentity
    /// The run's random stream: trainers draw from it (initialisations, sampling) so resume restores it.
    public var rng: RNG
    public private(set) var step = 0
    public private(set) var numTokens = 0.0
    public let totalSteps: Int
    /// Global gradient norm (before clipping) of the last optimizer step.
    public private(set) var lastGradNorm = 0.0
    /// Optimizer steps skipped for a non-finite gradient (`skip_nonfinite_steps`).
    public private(set) var skippedSteps = 0
    /// True while the gradient buffers hold zeros (fresh, or just consumed by AdamW, which zeroes what it
    /// reads), so a step skips the separate zeroing pass.
    var gradientsAreZero = false
    /// The processes of this run (set by `train`; one unless started by mpirun). Rank 0 alone writes the output
    /// directory; every rank holds the same weights after each step.
    public private(set) var world: any Communicator = SingleProcess()
    /// Seconds this rank spent in the step's collectives: `waiting` for the other ranks to finish their
    /// micro-batches (the metric exchange), and `exchanging` (all-reducing) the gradients.
    public private(set) var communication = PhaseTimes()

    public init(
        config: Config, groups: [ParameterGroup], batchesPerEpoch: Int, outputDirectory: URL,
        identity: CheckpointIdentity, rng: RNG
    ) {
        self.config = config
        self.groups = groups
        self.outputDirectory = outputDirectory
        self.identity = identity
        self.rng = rng
        let t = config.training
        optimizers = groups.map { AdamW(store: $0.store, config: t.adamW, decayFilter: $0.decays) }
        totalSteps =
            t.maxSteps > 0 ? t.maxSteps : max(1, t.numTrainEpochs * batchesPerEpoch / t.gradientAccumulationSteps)
    }

    public var schedule: LRSchedule {
        let t = config.training
        let warmup = t.warmupSteps > 0 ? t.warmupSteps : Int((t.warmupRatio * Float(totalSteps)).rounded(.up))
        return LRSchedule(kind: t.lrSchedulerType, peak: t.learningRate, warmupSteps: warmup, totalSteps: totalSteps)
    }

    public var trainableParameterCount: Int { groups.reduce(0) { $0 + $1.store.parameterCount } }

    /// Trains to `totalSteps`, or until `onEvent` returns `.stop` or `stopRequested()` (checked every step,
    /// e.g. after Ctrl-C) turns true; stopping saves a checkpoint first. `resume` is a checkpoint or output
    /// directory of an earlier run with the same config. Returns the last logged metrics.
    @discardableResult
    public func train(
        _ objective: TrainingObjective, resume: URL? = nil, stopRequested: () -> Bool = { false },
        onEvent: (TrainerEvent) -> TrainingControl = { _ in .proceed }
    ) throws -> Metrics {
        world = try World.current()
        let t = config.training, total = totalSteps, main = world.isMain
        guard t.gradientAccumulationSteps >= world.size else {
            throw ConfigError.invalid(
                field: "gradient_accumulation_steps", value: "\(t.gradientAccumulationSteps)",
                expected: "at least the rank count (\(world.size)): the ranks share each step's micro-batches;"
                    + " a multiple of it balances them")
        }
        // Ranks started with different settings would wait for each other forever at a different step.
        try world.expectSame(
            fnv1a(try configJSON()), "the training config (same flags and files on every rank)")
        try world.expectSame(UInt32(truncatingIfNeeded: total), "the number of steps")
        let shard = Shard(rank: world.rank, size: world.size)
        let lock = main ? try OutputLock(directory: outputDirectory) : nil  // one run per output directory
        defer { withExtendedLifetime(lock) {} }
        if main { Checkpoint.removeStaging(in: outputDirectory) }  // what a killed run was writing
        if let resume { try restore(from: resume, objective) }
        let log =
            main ? try MetricsLog(url: outputDirectory.appendingPathComponent(CheckpointLayout.metricsFile)) : nil
        var window = MetricSums(), windowSteps = 0, windowGradNorm = 0.0, windowStart = Date()
        var last: Metrics = [:]
        while step < total {
            let lr = schedule.learningRate(at: step)
            if !gradientsAreZero { for g in groups { g.store.zeroGradients() } }
            gradientsAreZero = false
            var sums = try objective.accumulateGradients(
                step: step, microBatches: t.gradientAccumulationSteps, shard: shard)
            if world.size > 1 {
                // The small metric exchange first: it waits for the slowest rank, so the gradients' time is the
                // exchange itself.
                communication.restart()
                try sums.allReduce(world)
                communication.mark("waiting")
                for g in groups {
                    if let grad = g.store.gradients { try world.allReduceSum(grad.pointer, count: grad.count) }
                }
                communication.mark("exchanging")
            }
            let applied = try optimizerStep(lr: lr)
            step += 1
            numTokens += sums.tokens
            if applied {
                window.merge(sums)
                windowGradNorm += lastGradNorm
                windowSteps += 1
            }
            var control = stopRequested() ? TrainingControl.stop : .proceed
            if step % t.loggingSteps == 0 || step == total || control == .stop {
                let elapsed = Date().timeIntervalSince(windowStart)
                let position = objective.dataPosition
                last = window.means
                last["step"] = Double(step)
                last["learning_rate"] = Double(lr)
                if windowSteps > 0 { last["grad_norm"] = windowGradNorm / Double(windowSteps) }
                if t.skipNonfiniteSteps { last["skipped_steps"] = Double(skippedSteps) }
                last["num_tokens"] = numTokens
                last["epoch"] =
                    Double(position.epoch) + Double(position.batch) / Double(max(objective.batchesPerEpoch, 1))
                last["tokens_per_second"] = window.tokens / max(elapsed, 1e-9)
                try log?.append(last)
                if main && onEvent(.step(step: step, totalSteps: total, metrics: last)) == .stop { control = .stop }
                (window, windowSteps, windowGradNorm, windowStart) = (MetricSums(), 0, 0, Date())
            }
            if main, (t.evalSteps > 0 && step % t.evalSteps == 0) || step == total,
                var metrics = try objective.evaluate()
            {
                metrics["step"] = Double(step)
                try log?.append(metrics, kind: "eval")
                if onEvent(.evaluation(step: step, metrics: metrics)) == .stop { control = .stop }
                windowStart = Date()  // throughput excludes evaluation time
            }
            if world.size > 1 {  // every rank stops at the same step if any rank (or rank 0's observer) asks
                var stop = [control == .stop ? 1.0 : 0]
                try world.allReduceSum(&stop)
                control = stop[0] > 0 ? .stop : .proceed
            }
            if main && (step % t.saveSteps == 0 || step == total || control == .stop) {
                let dir = try saveCheckpoint(objective)
                _ = onEvent(.checkpointSaved(step: step, directory: dir))
            }
            if control == .stop { break }
        }
        return last
    }

    /// Clips over every group, then one AdamW update per group. A non-finite gradient norm stops the run naming the
    /// step (nothing is updated or saved, so the last checkpoint stays the last good one), or with
    /// `skip_nonfinite_steps` the step is skipped: gradients dropped, weights and moments untouched, counted in
    /// `skipped_steps`. Returns whether the update was applied.
    func optimizerStep(lr: Float) throws -> Bool {
        let stores = groups.map(\.store), t = config.training, maxNorm = t.maxGradNorm
        let (norm, factor) =
            maxNorm > 0
            ? GradientClipping.clipFactor(stores, maxNorm: maxNorm)
            : (GradientClipping.globalNorm(stores), 1)
        guard norm.isFinite else {
            if t.skipNonfiniteSteps {
                skippedSteps += 1
                gradientsAreZero = false
                return false
            }
            let saved = CheckpointLayout.resolveCheckpoint(outputDirectory).map { "\($0.lastPathComponent) is intact" }
            throw ConfigError.invalid(
                field: "gradients", value: "\(norm) (global norm) at step \(step + 1)",
                expected: "finite values; the run stopped before updating any weight"
                    + " (\(saved ?? "no checkpoint was saved yet")). Lower learning_rate, check the data at this step,"
                    + " or set skip_nonfinite_steps: true to skip such steps")
        }
        lastGradNorm = Double(norm)
        for (g, o) in zip(groups, optimizers) {
            o.update(learningRate: lr * g.learningRateScale, gradientScale: factor, zeroingGradients: true)
        }
        gradientsAreZero = true
        return true
    }

    // MARK: checkpoints

    func configJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(config)
    }

    /// Writes `checkpoint-<step>` atomically (and prunes to `save_total_limit`).
    @discardableResult
    public func saveCheckpoint(_ objective: TrainingObjective) throws -> URL {
        let state = TrainerState(
            step: step, totalSteps: totalSteps, dataPosition: objective.dataPosition,
            optimizerSteps: Dictionary(uniqueKeysWithValues: zip(groups.map(\.name), optimizers.map(\.step))),
            numTokens: numTokens, skippedSteps: skippedSteps, rngState: rng.state,
            tokenizerFingerprint: identity.tokenizerFingerprint,
            baseModel: identity.baseModel, trainable: identity.weightsFile)
        let files = identity.extraFiles.merging(try objective.checkpointFiles()) { $1 }
        do {
            return try Checkpoint.save(
                state: state, configJSON: try configJSON(), groups: groups, optimizers: optimizers,
                extraFiles: files, to: outputDirectory, keep: config.training.saveTotalLimit)
        } catch {
            throw CheckpointError.saveFailed(
                directory: outputDirectory.path, step: step, reason: "\(error)",
                intact: CheckpointLayout.resolveCheckpoint(outputDirectory)?.lastPathComponent)
        }
    }

    /// Restores everything `saveCheckpoint` wrote, refusing a different config or tokenizer.
    public func restore(from url: URL, _ objective: TrainingObjective) throws {
        let dir = try Checkpoint.resolve(url)
        let (saved, savedConfig) = try Checkpoint.readState(dir)
        let file = dir.appendingPathComponent(CheckpointLayout.configFile).path
        let theirs = try JSONDecoder().decode(Config.self, from: savedConfig)
        guard theirs == config else {
            throw CheckpointError.mismatch(
                file: file, field: "config", expected: "the same resolved config", found: "a different one",
                hint: "resume with the checkpoint's config (--config \(file)).")
        }
        let stateFile = dir.appendingPathComponent(CheckpointLayout.stateFile).path
        guard saved.tokenizerFingerprint == identity.tokenizerFingerprint else {
            throw CheckpointError.mismatch(
                file: stateFile, field: "tokenizer fingerprint",
                expected: identity.tokenizerFingerprint.prefix(12) + "…",
                found: saved.tokenizerFingerprint.prefix(12) + "…",
                hint: "resume with the model the checkpoint was trained from (\(saved.baseModel)).")
        }
        guard saved.rngState.count == 4 else {
            throw CheckpointError.invalidState(file: stateFile, reason: "rngState must hold 4 words")
        }
        try Checkpoint.restore(dir, state: saved, groups: groups, optimizers: optimizers)
        try objective.restore(dataPosition: saved.dataPosition)
        try objective.restore(checkpoint: dir)
        step = saved.step
        numTokens = saved.numTokens
        skippedSteps = saved.skippedSteps ?? 0
        rng = RNG(state: saved.rngState)
    }
}

/// What a checkpoint records about where its weights came from and how they are laid out.
public struct CheckpointIdentity: Sendable {
    public var baseModel: String
    public var tokenizerFingerprint: String
    /// `CheckpointLayout.adapterWeightsFile` (a PEFT directory) or `.modelWeightsFile` (full weights).
    public var weightsFile: String
    /// Further files written into every checkpoint (e.g. `adapter_config.json`).
    public var extraFiles: [String: Data]

    public init(baseModel: String, tokenizerFingerprint: String, weightsFile: String, extraFiles: [String: Data] = [:])
    {
        self.baseModel = baseModel
        self.tokenizerFingerprint = tokenizerFingerprint
        self.weightsFile = weightsFile
        self.extraFiles = extraFiles
    }
}

/// A trainer: an objective that owns its loop. Running, counting and saving come from here.
public protocol Trainer: TrainingObjective {
    associatedtype Config: TrainerConfig
    var loop: TrainingLoop<Config> { get }
}

extension Trainer {
    /// Trains (see `TrainingLoop.train`).
    @discardableResult
    public func train(
        resume: URL? = nil, stopRequested: () -> Bool = { false },
        onEvent: (TrainerEvent) -> TrainingControl = { _ in .proceed }
    ) throws -> Metrics {
        try loop.train(self, resume: resume, stopRequested: stopRequested, onEvent: onEvent)
    }

    public var trainableParameterCount: Int { loop.trainableParameterCount }
    public var totalSteps: Int { loop.totalSteps }
    public var outputDirectory: URL { loop.outputDirectory }

    @discardableResult
    public func saveCheckpoint() throws -> URL { try loop.saveCheckpoint(self) }
}

/// FNV-1a (32-bit) of `data`: a fingerprint the ranks compare.
func fnv1a(_ data: Data) -> UInt32 { data.reduce(UInt32(2_166_136_261)) { ($0 ^ UInt32($1)) &* 16_777_619 } }

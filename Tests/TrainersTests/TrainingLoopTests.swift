// The shared loop with two parameter groups (a LoRA adapter and a scalar head, as a reward model or a
// critic trains them) on a small random model: the loss goes down, a stopped and resumed run equals an
// uninterrupted one bit for bit in both groups' weights and moments, and the checkpoint is a PEFT
// directory with the head saved as `modules_to_save`.

import Datasets
import Distributed
import Foundation
import ModelExport
import Models
import TensorCore
import Testing
import _TestSupport

@testable import Trainers

/// A config with only the shared arguments.
struct ToyConfig: TrainerConfig {
    var training = TrainingArguments()
    init() {}
    static var ownKeys: [String] { [] }
    init(from decoder: any Decoder) throws { training = try TrainingArguments(from: decoder) }
    func encode(to encoder: any Encoder) throws { try training.encode(to: encoder) }
    func validate() throws { try training.validate() }
}

/// Regress the head's score at each row's last token onto a fixed target: L = mean (r − y)².
final class ToyRegression: TrainingObjective {
    let model: LlamaModel, adapter: LoRAAdapter, head: ScalarHead
    let rows: [[Int32]], targets: [Float]
    var position = DataLoaderPosition(seed: 0)
    let batchSize = 4
    /// Steps (0-based) whose gradients are made NaN, as an overflow would.
    var poisoned: Set<Int> = []

    init(model: LlamaModel, adapter: LoRAAdapter, head: ScalarHead) {
        self.model = model
        self.adapter = adapter
        self.head = head
        rows = RandomModel.rows((0..<16).map { 3 + $0 % 6 }, seed: 31)
        targets = rows.map { Float($0.count % 3) - 1 }
    }

    var batchesPerEpoch: Int { rows.count / batchSize }
    var dataPosition: DataLoaderPosition { position }
    func restore(dataPosition: DataLoaderPosition) throws { position = dataPosition }

    func accumulateGradients(step: Int, microBatches: Int, shard: Shard) throws -> MetricSums {
        var sums = MetricSums()
        for i in 0..<microBatches {
            let start = position.batch * batchSize
            let batchRows = Array(rows[start..<(start + batchSize)]), y = Array(targets[start..<(start + batchSize)])
            position.batch += 1
            if position.batch == batchesPerEpoch {
                position = DataLoaderPosition(epoch: position.epoch + 1, batch: 0, seed: 0)
            }
            guard shard.owns(i) else { continue }
            let batch = TokenBatch(rows: batchRows, padID: 0)
            let acts = LlamaActivations(config: model.config, batchSize: batchSize, length: batch.length)
            acts.isTraining = true
            acts.dropoutSeed = UInt64(step)
            let hidden = model.forward(batch, adapter: adapter, into: acts)
            let read = (0..<batchSize).map(batch.lastRealToken(row:))
            let r = head.forward(hidden: hidden.pointer, rows: read)
            let n = Float(batchSize * microBatches)
            let dr = zip(r, y).map { 2 * ($0 - $1) / n * (poisoned.contains(step) ? .nan : 1) }
            let dHidden = FloatBuffer(count: batch.tokenCount * model.config.hiddenSize)
            head.backward(dValues: dr, hidden: hidden.pointer, rows: read, dHidden: dHidden.pointer)
            model.backward(dOutput: dHidden.pointer, acts: acts)
            sums.add(
                "loss", zip(r, y).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }, weight: Double(batchSize))
            sums.tokens += Double(batchRows.reduce(0) { $0 + $1.count })
        }
        return sums
    }

    func evaluate() throws -> Metrics? { nil }
}

@Suite struct TrainingLoopTests {
    static func run(
        out: URL, steps: Int, stopAt: Int? = nil, resume: Bool = false, poisoned: Set<Int> = [],
        skipNonfinite: Bool = false, saveSteps: Int = 100, metrics: ((Metrics) -> Void)? = nil
    ) throws -> (TrainingLoop<ToyConfig>, [Double]) {
        var c = ToyConfig()
        c.maxSteps = steps
        c.learningRate = 2e-2
        c.loraRank = 4
        c.loraDropout = 0.1
        c.gradientAccumulationSteps = 2
        c.loggingSteps = 1
        c.saveSteps = saveSteps
        c.skipNonfiniteSteps = skipNonfinite
        let model = RandomModel.make()
        var rng = RNG(seed: c.seed)
        let head = ScalarHead(name: "score", hiddenSize: model.config.hiddenSize, bias: true, seed: rng.next())
        let target = try TrainableTarget(
            model: model, lora: c.training.lora, adapterName: "rm", seed: rng.next(), heads: [head])
        let objective = ToyRegression(model: model, adapter: target.adapter!, head: head)
        objective.poisoned = poisoned
        let fingerprint = "toy-tokenizer"
        let peft = PEFTAdapter.configurationData(target.adapter!.config, baseModel: "random", modulesToSave: ["score"])
        let loop = TrainingLoop(
            config: c, groups: target.groups, batchesPerEpoch: objective.batchesPerEpoch, outputDirectory: out,
            identity: CheckpointIdentity(
                baseModel: "random", tokenizerFingerprint: fingerprint,
                weightsFile: CheckpointLayout.adapterWeightsFile,
                extraFiles: [PEFTAdapter.configFileName: peft]), rng: rng)
        var losses: [Double] = []
        try loop.train(
            objective, resume: resume ? out : nil,
            onEvent: { event in
                if case let .step(step, _, m) = event {
                    metrics?(m)
                    losses.append(m["loss"] ?? .nan)
                    if step == stopAt { return .stop }
                }
                return .proceed
            })
        return (loop, losses)
    }

    @Test func twoGroupsTrainAndResumeBitIdentically() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (straight, losses) = try Self.run(out: dir.appendingPathComponent("a"), steps: 12)
        #expect(straight.groups.map(\.name) == ["adapter", "score"])
        #expect(losses.suffix(3).reduce(0, +) < losses.prefix(3).reduce(0, +), "loss \(losses)")
        _ = try Self.run(out: dir.appendingPathComponent("b"), steps: 12, stopAt: 5)
        let checkpoint = dir.appendingPathComponent("b/checkpoint-5")
        let (resumed, _) = try Self.run(out: dir.appendingPathComponent("b"), steps: 12, resume: true)
        for (x, y) in zip(resumed.groups, straight.groups) {
            #expect(x.store.values.array == y.store.values.array, "\(x.name) weights")
        }
        for (x, y) in zip(resumed.optimizers, straight.optimizers) {
            #expect(x.m.array == y.m.array && x.v.array == y.v.array && x.step == 12 && y.step == 12)
        }
        // The checkpoint is a PEFT directory with the head as modules_to_save; both load back through the loader.
        let fresh = RandomModel.make()
        let loaded = try ModelLoader.load(
            adapter: checkpoint,
            onto: LoadedModel(
                model: fresh, tokenizer: try Fixtures.byteTokenizer(),
                chatTemplate: nil, source: checkpoint), name: "rm")
        #expect(loaded.heads["score"] != nil && loaded.adapter != nil)
        let state =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: checkpoint.appendingPathComponent("trainer_state.json"))) as! [String: Any]
        #expect(state["optimizerSteps"] as? [String: Int] == ["adapter": 5, "score": 5])
    }

    /// A NaN gradient stops the run naming the step, before any weight changes: the last checkpoint is the newest
    /// thing on disk and resumes. With `skip_nonfinite_steps` the step is skipped (weights untouched, counted).
    @Test func aNonFiniteGradientStopsNamingTheStepOrIsSkipped() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("nan")
        do {
            _ = try Self.run(out: out, steps: 8, poisoned: [5], saveSteps: 2)
            Issue.record("a NaN gradient did not stop the run")
        } catch {
            let text = "\(error)"
            #expect(text.contains("at step 6") && text.contains("checkpoint-4 is intact"), "\(text)")
        }
        #expect(try String(contentsOf: out.appendingPathComponent("latest"), encoding: .utf8) == "checkpoint-4")
        let (state, _) = try Checkpoint.readState(out.appendingPathComponent("checkpoint-4"))
        #expect(state.step == 4)
        // Skipping: the run finishes, one step counted, the weights stay finite and equal to a run that stopped
        // just before the poisoned step and went on without its update.
        var skipped: [Double] = []
        let (skipping, _) = try Self.run(
            out: dir.appendingPathComponent("skip"), steps: 8, poisoned: [5], skipNonfinite: true,
            metrics: { skipped.append($0["skipped_steps"] ?? -1) })
        #expect(skipped == [0, 0, 0, 0, 0, 1, 1, 1] && skipping.skippedSteps == 1)
        // metrics.jsonl stays valid JSON lines; the skipped step's record has no loss or grad_norm.
        let lines = try String(contentsOf: dir.appendingPathComponent("skip/metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(lines.count == 8 && lines[5]["skipped_steps"] as? Double == 1 && lines[5]["grad_norm"] == nil)
        #expect(skipping.groups.allSatisfy { $0.store.values.array.allSatisfy(\.isFinite) })
        #expect(skipping.optimizers.allSatisfy { $0.step == 7 })
        // Resume keeps the count.
        let out2 = dir.appendingPathComponent("skip-resumed")
        _ = try Self.run(out: out2, steps: 8, stopAt: 6, poisoned: [5], skipNonfinite: true)
        let (resumed, _) = try Self.run(out: out2, steps: 8, resume: true, poisoned: [5], skipNonfinite: true)
        #expect(resumed.skippedSteps == 1)
        for (x, y) in zip(resumed.groups, skipping.groups) { #expect(x.store.values.array == y.store.values.array) }
    }

    /// Two runs on one output directory: the second is refused, naming the holder; once the first ends it runs.
    @Test func aSecondRunOnTheSameOutputIsRefused() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var first: OutputLock? = try OutputLock(directory: dir)
        #expect(first != nil)
        #expect(throws: OutputLockError.inUse(directory: dir.path, holder: "pid \(getpid())")) {
            _ = try Self.run(out: dir, steps: 2)
        }
        first = nil
        let (loop, _) = try Self.run(out: dir, steps: 2)
        #expect(loop.step == 2)
    }

    /// Saving a step that already has a checkpoint (an earlier run's) swaps it whole: the new weights are there and
    /// no staging or swapped-out directory is left behind.
    @Test func aCheckpointOfTheSameStepIsReplacedWhole() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (loop, _) = try Self.run(out: dir, steps: 3, saveSteps: 3)
        let checkpoint = dir.appendingPathComponent("checkpoint-3")
        let (state, config) = try Checkpoint.readState(checkpoint)
        let weights = checkpoint.appendingPathComponent(state.trainable)
        let before = try Data(contentsOf: weights)
        let values = loop.groups[0].store.values
        for i in 0..<values.count { values.pointer[i] += 1 }
        try Checkpoint.save(
            state: state, configJSON: config, groups: loop.groups, optimizers: loop.optimizers, to: dir, keep: 2)
        let after = try Data(contentsOf: weights)
        #expect(after != before && after.count == before.count)
        let hidden = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter {
            $0.hasPrefix(".") && $0 != OutputLock.fileName
        }
        #expect(hidden.isEmpty, "\(hidden)")
    }

    /// What a run killed while writing leaves (staging directories of a checkpoint, `latest` and an export) is removed
    /// by the next run on the directory; a swapped-out export is kept while its original is missing.
    @Test func aKilledRunsStagingIsRemovedByTheNextRun() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        for name in [".checkpoint-3.tmp-1f", ".adapter.export-2a", ".adapter.old-3b", "adapter"] {
            try fm.createDirectory(at: dir.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        try Data("x".utf8).write(to: dir.appendingPathComponent(".latest.tmp-4c"))
        try fm.createDirectory(at: dir.appendingPathComponent(".model.old-5d"), withIntermediateDirectories: true)
        _ = try Self.run(out: dir, steps: 1)
        let hidden = try fm.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }.sorted()
        #expect(hidden == [OutputLock.fileName, ".model.old-5d"], "\(hidden)")
    }

    /// A full disk (a 1 MiB tmpfs as the output) while a checkpoint is written: the run stops with an error that
    /// names the cause, `latest` still names the previous checkpoint, which reads back whole, and once space is
    /// freed the run resumes to the same weights as an uninterrupted one.
    @Test(.enabled(if: Tmpfs.canMount, "mounting a small tmpfs needs root (CAP_SYS_ADMIN)"))
    func aFullDiskStopsTheRunAndKeepsTheLastCheckpoint() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (straight, _) = try Self.run(out: dir.appendingPathComponent("straight"), steps: 4, saveSteps: 2)
        let disk = try Tmpfs(at: dir.appendingPathComponent("disk"), bytes: 1 << 20)
        defer { disk.unmount() }
        let out = disk.url.appendingPathComponent("run")
        _ = try Self.run(out: out, steps: 4, stopAt: 2, saveSteps: 2)
        let checkpoint = out.appendingPathComponent("checkpoint-2")
        let files = try FileManager.default.contentsOfDirectory(atPath: checkpoint.path).sorted()
        let before = try files.map { try Data(contentsOf: checkpoint.appendingPathComponent($0)) }
        // Fill the disk but for a few pages: the metrics lines of steps 3 and 4 fit, checkpoint-4 does not.
        let filler = disk.url.appendingPathComponent("filler")
        #expect(FileManager.default.createFile(atPath: filler.path, contents: nil))
        let handle = try FileHandle(forWritingTo: filler)
        while (try? handle.write(contentsOf: Data(count: 4096))) != nil {}
        try handle.truncate(atOffset: max(0, try handle.offset() - 3 * 4096))
        try handle.close()
        do {
            _ = try Self.run(out: out, steps: 4, resume: true, saveSteps: 2)
            Issue.record("a full disk did not stop the run")
        } catch {
            let text = "\(error)"
            #expect(
                text.contains("could not save checkpoint-4") && text.contains("No space left on device")
                    && text.contains("checkpoint-2 is intact"), "\(text)")
        }
        #expect(try String(contentsOf: out.appendingPathComponent("latest"), encoding: .utf8) == "checkpoint-2")
        #expect(try files.map { try Data(contentsOf: checkpoint.appendingPathComponent($0)) } == before)
        #expect(try Checkpoint.readState(checkpoint).state.step == 2)
        try FileManager.default.removeItem(at: filler)
        let (resumed, _) = try Self.run(out: out, steps: 4, resume: true, saveSteps: 2)
        for (x, y) in zip(resumed.groups, straight.groups) { #expect(x.store.values.array == y.store.values.array) }
    }
}

/// A small tmpfs mounted for a test (Linux, root).
struct Tmpfs {
    let url: URL
    init(at url: URL, bytes: Int) throws {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        guard Self.run(["mount", "-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", url.path]) else {
            throw CocoaError(.fileWriteNoPermission)
        }
        self.url = url
    }
    func unmount() { _ = Self.run(["umount", url.path]) }

    static let canMount: Bool = {
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("tmpfs-probe-\(getpid())")
        defer { try? FileManager.default.removeItem(at: probe) }
        guard getuid() == 0, let t = try? Tmpfs(at: probe, bytes: 1 << 16) else { return false }
        t.unmount()
        return true
    }()

    private static func run(_ arguments: [String]) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }
}

// Checkpoints that resume bit-identically: every trainable group's weights (a LoRA adapter under PEFT's
// key names, a head, or the full model under HF names), each group's AdamW moments and step, data-loader
// position, RNG state,
// resolved config and tokenizer fingerprint. Written into a hidden temporary directory, fsynced, then
// renamed to `checkpoint-<step>`, and `latest` is replaced atomically afterwards: an interrupted save
// never leaves a corrupt checkpoint where a good one was.

import Datasets
import Foundation
import ModelExport
import ModelFormats
import TensorCore

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case notFound(directory: String)
    case missingFile(directory: String, file: String)
    case invalidState(file: String, reason: String)
    case mismatch(file: String, field: String, expected: String, found: String, hint: String)
    /// Writing `checkpoint-<step>` failed (a full disk, a quota); `intact` names the newest checkpoint left whole.
    case saveFailed(directory: String, step: Int, reason: String, intact: String?)

    public var description: String {
        switch self {
        case let .notFound(dir):
            "\(dir): no checkpoint here (expected \(CheckpointLayout.stateFile), or a"
                + " '\(CheckpointLayout.latestFile)' file naming a \(CheckpointLayout.checkpointPrefix)N directory)."
        case let .missingFile(dir, file):
            "\(dir): checkpoint is incomplete, \(file) is missing. Hint: resume from an earlier checkpoint-N."
        case let .invalidState(file, reason): "\(file): \(reason)."
        case let .mismatch(file, field, expected, found, hint):
            "\(file): \(field) is \(found) but this run has \(expected). Hint: \(hint)"
        case let .saveFailed(dir, step, reason, intact):
            "\(dir): could not save \(CheckpointLayout.checkpointPrefix)\(step), the run stopped (\(reason))."
                + (intact.map { " \($0) is intact: free some space and rerun with --resume \(dir) to go on from it." }
                    ?? " No earlier checkpoint was saved.")
        }
    }
}

/// What a trainer needs to continue exactly where it stopped.
public struct TrainerState: Codable, Sendable, Equatable {
    public var step: Int
    public var totalSteps: Int
    public var dataPosition: DataLoaderPosition
    /// AdamW steps taken, per parameter group.
    public var optimizerSteps: [String: Int]
    public var numTokens: Double
    /// Steps skipped for a non-finite gradient so far (absent in checkpoints written before the option).
    public var skippedSteps: Int? = nil
    public var rngState: [UInt64]
    public var tokenizerFingerprint: String
    public var baseModel: String
    /// The weights file: `adapter_model.safetensors` (a PEFT directory) or `model.safetensors`.
    public var trainable: String
    public var version: Int = 2

    /// Why these values cannot come from a run (an edited or corrupted file), or nil: a resume would otherwise trap on
    /// them (a negative epoch, an all-zero RNG state, an optimizer step count beyond Int).
    var problem: String? {
        if step < 0 || totalSteps < 1 || step > totalSteps { return "step \(step) of \(totalSteps)" }
        if dataPosition.epoch < 0 || dataPosition.batch < 0 || dataPosition.epoch > 1 << 40 {
            return "data position epoch \(dataPosition.epoch), batch \(dataPosition.batch)"
        }
        if let (group, n) = optimizerSteps.first(where: { $0.value < 0 || $0.value > step }) {
            return "\(n) optimizer steps for \(group) at step \(step)"
        }
        if rngState.count != 4 || rngState.allSatisfy({ $0 == 0 }) {
            return "RNG state \(rngState) (expected 4 words, not all zero)"
        }
        if !numTokens.isFinite || numTokens < 0 { return "num_tokens \(numTokens)" }
        if let s = skippedSteps, s < 0 || s > step { return "\(s) skipped steps at step \(step)" }
        return nil
    }
}

public enum Checkpoint {
    static let stateFile = CheckpointLayout.stateFile, optimizerFile = CheckpointLayout.optimizerFile
    static let configFile = CheckpointLayout.configFile

    /// Writes `checkpoint-<step>` under `outputDirectory` atomically and prunes old ones.
    @discardableResult
    public static func save(
        state: TrainerState, configJSON: Data, groups: [ParameterGroup], optimizers: [AdamW],
        extraFiles: [String: Data] = [:], to outputDirectory: URL, keep: Int
    ) throws -> URL {
        let fm = FileManager.default
        try fm.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        let final = outputDirectory.appendingPathComponent(CheckpointLayout.checkpointDirectory(step: state.step))
        let tmp = outputDirectory.appendingPathComponent(".\(final.lastPathComponent).tmp-\(UUID().uuidString)")
        try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeSynced(try encoder.encode(state), to: tmp.appendingPathComponent(stateFile))
            try writeSynced(configJSON, to: tmp.appendingPathComponent(configFile))
            for (name, data) in extraFiles { try writeSynced(data, to: tmp.appendingPathComponent(name)) }
            try SafeTensorsWriter.write(
                tensors: groups.flatMap { $0.store.tensors(prefix: $0.filePrefix) },
                metadata: ["format": "pt"], to: tmp.appendingPathComponent(state.trainable))
            let moments = zip(groups, optimizers).flatMap { g, o in
                g.store.tensors(prefix: "exp_avg." + g.filePrefix, buffer: o.m)
                    + g.store.tensors(prefix: "exp_avg_sq." + g.filePrefix, buffer: o.v)
            }
            try SafeTensorsWriter.write(
                tensors: moments, metadata: state.optimizerSteps.mapValues { "\($0)" },
                to: tmp.appendingPathComponent(optimizerFile))
            // A checkpoint of the same step (an earlier run's) is swapped out atomically, never removed first.
            try ExportDestination.install(
                staging: tmp.path, at: final.path, replacing: fm.fileExists(atPath: final.path))
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
        try? fm.removeItem(at: tmp)  // what the swap left there: the replaced checkpoint
        try writeSynced(
            Data(final.lastPathComponent.utf8), to: outputDirectory.appendingPathComponent(CheckpointLayout.latestFile))
        // Prune: keep the newest `keep` checkpoints.
        let all = ((try? fm.contentsOfDirectory(atPath: outputDirectory.path)) ?? [])
            .compactMap { name -> (Int, String)? in
                guard let n = CheckpointLayout.step(ofCheckpoint: name) else { return nil }
                return (n, name)
            }.sorted { $0.0 > $1.0 }
        for (_, name) in all.dropFirst(keep) { try? fm.removeItem(at: outputDirectory.appendingPathComponent(name)) }
        return final
    }

    /// Removes the staging files and directories a killed run left in `directory` (hidden names with `.tmp-` or
    /// `.export-`: a checkpoint, `latest` or an export being written), and a swapped-out `.NAME.old-…` once NAME
    /// is back in place. Only while holding the directory's lock.
    static func removeStaging(in directory: URL) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: directory.path)) ?? [] where name.hasPrefix(".") {
            let old = name.dropFirst().components(separatedBy: ".old-")
            let stale =
                name.contains(".tmp-") || name.contains(".export-")
                || (old.count == 2 && fm.fileExists(atPath: directory.appendingPathComponent(old[0]).path))
            if stale { try? fm.removeItem(at: directory.appendingPathComponent(name)) }
        }
    }

    /// Writes a file via a temporary sibling, fsync and rename.
    static func writeSynced(_ data: Data, to url: URL) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).tmp-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
            throw CheckpointError.invalidState(file: tmp.path, reason: "cannot create file")
        }
        let h = try FileHandle(forWritingTo: tmp)
        try h.write(contentsOf: data)
        try h.synchronize()
        try h.close()
        guard rename(tmp.path, url.path) == 0 else {  // POSIX rename replaces atomically
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw CheckpointError.invalidState(file: url.path, reason: "cannot replace (\(reason))")
        }
    }

    /// A checkpoint directory, or the one an output directory's `latest` names.
    public static func resolve(_ url: URL) throws -> URL {
        guard let dir = CheckpointLayout.resolveCheckpoint(url) else {
            throw CheckpointError.notFound(directory: url.path)
        }
        return dir
    }

    /// Reads the state and resolved config of a checkpoint directory.
    public static func readState(_ dir: URL) throws -> (state: TrainerState, configJSON: Data) {
        let stateURL = dir.appendingPathComponent(stateFile), configURL = dir.appendingPathComponent(configFile)
        guard let stateData = try? FileContents.read(stateURL) else {
            throw CheckpointError.missingFile(directory: dir.path, file: stateFile)
        }
        guard let config = try? FileContents.read(configURL) else {
            throw CheckpointError.missingFile(directory: dir.path, file: configFile)
        }
        let state: TrainerState
        do { state = try JSONDecoder().decode(TrainerState.self, from: stateData) } catch {
            throw CheckpointError.invalidState(file: stateURL.path, reason: "not a trainer state (\(error))")
        }
        if let problem = state.problem {
            throw CheckpointError.invalidState(
                file: stateURL.path, reason: "impossible values: \(problem); resume from another checkpoint")
        }
        return (state, config)
    }

    /// Restores every group's weights and optimizer moments and steps.
    public static func restore(_ dir: URL, state: TrainerState, groups: [ParameterGroup], optimizers: [AdamW]) throws {
        let weightsURL = dir.appendingPathComponent(state.trainable)
        let optimizerURL = dir.appendingPathComponent(optimizerFile)
        for (url, name) in [(weightsURL, weightsURL.lastPathComponent), (optimizerURL, optimizerFile)]
        where !FileManager.default.fileExists(atPath: url.path) {
            throw CheckpointError.missingFile(directory: dir.path, file: name)
        }
        let w = try SafeTensorsFile(contentsOf: weightsURL), o = try SafeTensorsFile(contentsOf: optimizerURL)
        for (g, optimizer) in zip(groups, optimizers) {
            guard let steps = state.optimizerSteps[g.name] else {
                throw CheckpointError.mismatch(
                    file: dir.appendingPathComponent(stateFile).path, field: "parameter group \(g.name)",
                    expected: "present", found: "missing",
                    hint: "the checkpoint was written by a run with other trainable parts.")
            }
            for e in g.store.entries {
                let name = g.filePrefix + e.name
                for (file, name, buffer) in [
                    (w, name, g.store.values), (o, "exp_avg." + name, optimizer.m),
                    (o, "exp_avg_sq." + name, optimizer.v),
                ] {
                    guard file.contains(name) else {
                        throw CheckpointError.mismatch(
                            file: file.url.path, field: "tensor \(name)", expected: "present", found: "missing",
                            hint: "the checkpoint was written for a different model or LoRA configuration.")
                    }
                    let info = try file.info(name)
                    guard info.shape == e.shape else {
                        throw CheckpointError.mismatch(
                            file: file.url.path, field: "shape of \(name)", expected: "\(e.shape)",
                            found: "\(info.shape)",
                            hint: "the checkpoint was written for a different model or LoRA rank.")
                    }
                    try file.copyFloats(name, into: buffer.pointer + e.offset, count: e.count)
                }
            }
            optimizer.step = steps
        }
    }
}

// Checkpoints that resume bit-identically: trainable weights (the LoRA adapter under PEFT's key
// names, or the full model under HF names), AdamW moments and step, data-loader position, RNG state,
// resolved config and tokenizer fingerprint. Written into a hidden temporary directory, fsynced, then
// renamed to `checkpoint-<step>`, and `latest` is replaced atomically afterwards: an interrupted save
// never leaves a corrupt checkpoint where a good one was.

import Datasets
import Foundation
import ModelFormats
import TensorCore

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case notFound(directory: String)
    case missingFile(directory: String, file: String)
    case invalidState(file: String, reason: String)
    case mismatch(file: String, field: String, expected: String, found: String, hint: String)

    public var description: String {
        switch self {
        case let .notFound(dir): "\(dir): no checkpoint here (expected trainer_state.json, or a 'latest' file naming a checkpoint-N directory)."
        case let .missingFile(dir, file): "\(dir): checkpoint is incomplete, \(file) is missing. Hint: resume from an earlier checkpoint-N."
        case let .invalidState(file, reason): "\(file): \(reason)."
        case let .mismatch(file, field, expected, found, hint): "\(file): \(field) is \(found) but this run has \(expected). Hint: \(hint)"
        }
    }
}

/// What a trainer needs to continue exactly where it stopped.
public struct TrainerState: Codable, Sendable, Equatable {
    public var step: Int
    public var totalSteps: Int
    public var dataPosition: DataLoaderPosition
    public var optimizerStep: Int
    public var numTokens: Double
    public var rngState: [UInt64]
    public var tokenizerFingerprint: String
    public var baseModel: String
    public var trainable: String  // "lora" or "full"
    public var version: Int = 1
}

public enum Checkpoint {
    static let stateFile = "trainer_state.json", weightsLoRA = "adapter_model.safetensors", weightsFull = "model.safetensors"
    static let optimizerFile = "optimizer.safetensors", configFile = "training_config.json"

    /// Writes `checkpoint-<step>` under `outputDirectory` atomically and prunes old ones.
    @discardableResult
    public static func save(state: TrainerState, configJSON: Data, weights: ParameterStore, optimizer: AdamW,
                            extraFiles: [String: Data] = [:], to outputDirectory: URL, keep: Int) throws -> URL {
        let fm = FileManager.default
        try fm.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        let final = outputDirectory.appendingPathComponent("checkpoint-\(state.step)")
        let tmp = outputDirectory.appendingPathComponent(".checkpoint-\(state.step).tmp-\(UUID().uuidString)")
        try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeSynced(try encoder.encode(state), to: tmp.appendingPathComponent(stateFile))
            try writeSynced(configJSON, to: tmp.appendingPathComponent(configFile))
            for (name, data) in extraFiles { try writeSynced(data, to: tmp.appendingPathComponent(name)) }
            try SafeTensorsWriter.write(tensors: tensors(of: weights, buffer: weights.values, prefix: ""),
                                        metadata: ["format": "pt"],
                                        to: tmp.appendingPathComponent(state.trainable == "lora" ? weightsLoRA : weightsFull))
            try SafeTensorsWriter.write(tensors: tensors(of: weights, buffer: optimizer.m, prefix: "exp_avg.")
                                            + tensors(of: weights, buffer: optimizer.v, prefix: "exp_avg_sq."),
                                        metadata: ["step": "\(optimizer.step)"], to: tmp.appendingPathComponent(optimizerFile))
            if fm.fileExists(atPath: final.path) { try fm.removeItem(at: final) }
            try fm.moveItem(at: tmp, to: final)
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
        try writeSynced(Data(final.lastPathComponent.utf8), to: outputDirectory.appendingPathComponent("latest"))
        // Prune: keep the newest `keep` checkpoints.
        let all = ((try? fm.contentsOfDirectory(atPath: outputDirectory.path)) ?? [])
            .compactMap { name -> (Int, String)? in
                guard name.hasPrefix("checkpoint-"), let n = Int(name.dropFirst("checkpoint-".count)) else { return nil }
                return (n, name)
            }.sorted { $0.0 > $1.0 }
        for (_, name) in all.dropFirst(keep) { try? fm.removeItem(at: outputDirectory.appendingPathComponent(name)) }
        return final
    }

    static func tensors(of store: ParameterStore, buffer: FloatBuffer, prefix: String) -> [SafeTensorsWriter.Tensor] {
        store.entries.map { e in
            SafeTensorsWriter.Tensor(name: prefix + e.name, shape: e.shape, dtype: .f32, pointer: UnsafePointer(buffer.pointer + e.offset))
        }
    }

    /// Writes a file via a temporary sibling, fsync and rename.
    static func writeSynced(_ data: Data, to url: URL) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString)")
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
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent(stateFile).path) { return url }
        if let name = try? String(contentsOf: url.appendingPathComponent("latest"), encoding: .utf8) {
            let dir = url.appendingPathComponent(name.trimmingCharacters(in: .whitespacesAndNewlines))
            if fm.fileExists(atPath: dir.appendingPathComponent(stateFile).path) { return dir }
        }
        throw CheckpointError.notFound(directory: url.path)
    }

    /// Reads the state and resolved config of a checkpoint directory.
    public static func readState(_ dir: URL) throws -> (state: TrainerState, configJSON: Data) {
        let stateURL = dir.appendingPathComponent(stateFile), configURL = dir.appendingPathComponent(configFile)
        guard let stateData = FileManager.default.contents(atPath: stateURL.path) else {
            throw CheckpointError.missingFile(directory: dir.path, file: stateFile)
        }
        guard let config = FileManager.default.contents(atPath: configURL.path) else {
            throw CheckpointError.missingFile(directory: dir.path, file: configFile)
        }
        do { return (try JSONDecoder().decode(TrainerState.self, from: stateData), config) } catch {
            throw CheckpointError.invalidState(file: stateURL.path, reason: "not a trainer state (\(error))")
        }
    }

    /// Restores trainable weights and optimizer moments into `weights` / `optimizer`.
    public static func restore(_ dir: URL, state: TrainerState, weights: ParameterStore, optimizer: AdamW) throws {
        let weightsURL = dir.appendingPathComponent(state.trainable == "lora" ? weightsLoRA : weightsFull)
        let optimizerURL = dir.appendingPathComponent(optimizerFile)
        for (url, name) in [(weightsURL, weightsURL.lastPathComponent), (optimizerURL, optimizerFile)]
        where !FileManager.default.fileExists(atPath: url.path) {
            throw CheckpointError.missingFile(directory: dir.path, file: name)
        }
        let w = try SafeTensorsFile(contentsOf: weightsURL), o = try SafeTensorsFile(contentsOf: optimizerURL)
        for e in weights.entries {
            for (file, name, buffer) in [(w, e.name, weights.values), (o, "exp_avg." + e.name, optimizer.m), (o, "exp_avg_sq." + e.name, optimizer.v)] {
                guard file.contains(name) else {
                    throw CheckpointError.mismatch(file: file.url.path, field: "tensor \(name)", expected: "present", found: "missing",
                                                   hint: "the checkpoint was written for a different model or LoRA configuration.")
                }
                let info = try file.info(name)
                guard info.shape == e.shape else {
                    throw CheckpointError.mismatch(file: file.url.path, field: "shape of \(name)", expected: "\(e.shape)", found: "\(info.shape)",
                                                   hint: "the checkpoint was written for a different model or LoRA rank.")
                }
                try file.copyFloats(name, into: buffer.pointer + e.offset, count: e.count)
            }
        }
        optimizer.step = state.optimizerStep
    }
}

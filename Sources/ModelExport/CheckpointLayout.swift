// File names of training outputs and checkpoints, as API constants: trainers write them, and the one
// loading path (`ModelLoader`) and the CLI read them. A LoRA checkpoint is a PEFT adapter directory
// (plus trainer state), so every PEFT tool loads it; a full fine-tune checkpoint holds `model.safetensors`.

import Foundation

public enum CheckpointLayout {
    /// Step, data position, RNG state, optimizer steps, tokenizer fingerprint (JSON).
    public static let stateFile = "trainer_state.json"
    /// The resolved trainer config the run used (JSON).
    public static let configFile = "training_config.json"
    /// AdamW moments of every trainable tensor (`exp_avg.<name>`, `exp_avg_sq.<name>`).
    public static let optimizerFile = "optimizer.safetensors"
    /// Trainable weights of a LoRA run (PEFT's file name and keys).
    public static let adapterWeightsFile = PEFTAdapter.weightsFileName
    /// Trainable weights of a full fine-tune (HF names).
    public static let modelWeightsFile = "model.safetensors"
    /// In an output directory: the name of its newest checkpoint directory.
    public static let latestFile = "latest"
    /// In an output directory: one JSON object per logged step.
    public static let metricsFile = "metrics.jsonl"
    /// In an output directory: the final adapter (PEFT) or the final model (HF directory).
    public static let finalAdapterDirectory = "adapter", finalModelDirectory = "model"
    /// Beside a reward model's adapter or model: its tokenizer fingerprint and reward statistics (JSON).
    public static let rewardModelFile = "reward_model.json"

    /// Prefix of checkpoint directories: `checkpoint-<step>`.
    public static let checkpointPrefix = "checkpoint-"

    public static func checkpointDirectory(step: Int) -> String { checkpointPrefix + "\(step)" }

    /// The step a checkpoint directory name stands for, nil for other names.
    public static func step(ofCheckpoint name: String) -> Int? {
        name.hasPrefix(checkpointPrefix) ? Int(name.dropFirst(checkpointPrefix.count)) : nil
    }

    /// The checkpoint `url` names: a checkpoint directory itself, or an output directory whose `latest`
    /// file names one. Nil when neither holds a trainer state.
    public static func resolveCheckpoint(_ url: URL) -> URL? {
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent(stateFile).path) { return url }
        if let name = try? String(contentsOf: url.appendingPathComponent(latestFile), encoding: .utf8) {
            let dir = url.appendingPathComponent(name.trimmingCharacters(in: .whitespacesAndNewlines))
            if fm.fileExists(atPath: dir.appendingPathComponent(stateFile).path) { return dir }
        }
        return nil
    }
}

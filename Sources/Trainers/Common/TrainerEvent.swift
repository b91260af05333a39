// Trainers emit events and never print; the CLI renders them and tests collect them.
// Metric names follow TRL (`loss`, `learning_rate`, `grad_norm`, `num_tokens`, `mean_token_accuracy`,
// `eval_loss`, …) so curves can be compared with theirs.

import Foundation

public typealias Metrics = [String: Double]

public enum TrainerEvent: Sendable {
    /// Logged every `logging_steps` optimizer steps.
    case step(step: Int, totalSteps: Int, metrics: Metrics)
    case evaluation(step: Int, metrics: Metrics)
    case checkpointSaved(step: Int, directory: URL)
    case message(String)
}

public enum TrainingControl: Sendable { case proceed, stop }

/// Appends one JSON object per line to a JSONL file — `metrics.jsonl`, `samples.jsonl` — (flushed per line, so a
/// crash loses nothing).
public final class MetricsLog: @unchecked Sendable {
    let handle: FileHandle
    public let url: URL

    public init(url: URL) throws {
        self.url = url
        if !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)  // opening it below reports a failure
        }
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    /// One record; a non-finite value (a NaN loss of a skipped step) is written as the string "nan", "inf" or
    /// "-inf", as report.json writes them (JSON has no such numbers).
    public func append(_ record: [String: Double], kind: String? = nil) throws {
        var object: [String: Any] = record.mapValues { v -> Any in
            v.isFinite ? v : v.isNaN ? "nan" : v > 0 ? "inf" : "-inf"
        }
        if let kind { object["kind"] = kind }
        try append(object: object)
    }

    /// One line with any JSON values (strings, numbers, arrays, …).
    public func append(object: [String: Any]) throws {
        var data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        data.append(0x0A)
        try handle.write(contentsOf: data)
    }

    deinit { try? handle.close() }
}

/// Seconds a trainer spent per phase of its steps (generation, scoring, reference, policy, …) since it was made:
/// `mark(phase)` adds the time since the previous mark (or `restart()`) to `phase`.
public struct PhaseTimes: Sendable {
    public private(set) var seconds: [String: Double] = [:]
    private var last = DispatchTime.now().uptimeNanoseconds

    public init() {}

    public mutating func restart() { last = DispatchTime.now().uptimeNanoseconds }

    public mutating func mark(_ phase: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        seconds[phase, default: 0] += Double(now - last) / 1e9
        last = now
    }
}

// `rlhf sweep`: the seed's advice to pilot on a fraction of the data, as a command — the demo run once per value
// of one setting (β, a learning rate, the reward model's LoRA rank, the annotators' flip rate, …), each variant
// reusing the finished stages that setting does not touch, ranked by PPO's gold reward at a common KL.

import Foundation
import Models
import Trainers

public struct SweepVariant: Codable, Sendable, Equatable {
    public var value: String
    public var directory: String
    /// PPO's largest d = √KL, and its mean gold reward near the sweep's common d.
    public var maxD: Double
    public var goldAtCommonD: Double
    public var ppoGold: Double
    public var ppoWinRate: Double?
    public var rewardHeldOutAccuracy: Double
    public var ppoOverOptimised: Bool
    public var bestOfNOverOptimised: Bool
    /// Gao et al.'s best-of-n fit (the trend across reward-model sizes or annotator noise shows in α and β).
    public var bestOfNFit: GaoFit?
}

public struct SweepResult: Codable, Sendable, Equatable {
    public var key: String
    /// The d every variant reached (the smallest of their largest), where gold is compared.
    public var commonD: Double
    /// Best first.
    public var variants: [SweepVariant]
}

public enum DemoSweep {
    /// Runs the demo for each of `values` of `key` (a DemoConfig key) over `base` in `out/<key>=<value>/`.
    /// `load` gives a fresh copy of the base model per variant (a run merges its SFT adapter into the model).
    public static func run(
        base: DemoConfig, key: String, values: [String], load: () throws -> LoadedModel, baseModel: String, out: URL,
        observer: DemoObserver
    ) throws -> SweepResult {
        guard DemoConfig.keys.contains(key) else {
            throw ConfigFileError.unknownKeys(file: "--key", keys: [key], accepted: DemoConfig.keys.sorted())
        }
        let fm = FileManager.default
        try fm.createDirectory(at: out, withIntermediateDirectories: true)
        var reports: [(String, URL, DemoReport)] = []
        var first: URL?
        for value in values {
            var object = (try JSONSerialization.jsonObject(with: JSONEncoder().encode(base))) as! [String: Any]
            object[key] =
                (try? JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)) ?? value
            let config = try DemoConfig.decode(object, source: "--values \(value)")
            try config.validate(source: "--values \(value)")
            let dir = out.appendingPathComponent("\(key)=\(value)")
            // Reuse the first variant's finished stages and what later stages load (their records say which
            // settings they read, so only the stages the setting touches run again).
            if let first, !fm.fileExists(atPath: dir.path) {
                try fm.createDirectory(at: dir, withIntermediateDirectories: true)
                for item in ["stages", "data", "sft", "reward"]
                where fm.fileExists(atPath: first.appendingPathComponent(item).path) {
                    try fm.copyItem(at: first.appendingPathComponent(item), to: dir.appendingPathComponent(item))
                }
            }
            observer.log("== \(key) = \(value): \(dir.path)")
            let report = try DemoPipeline(
                config: config, base: try load(), baseModel: baseModel, out: dir, observer: observer
            )
            .run()
            reports.append((value, dir, report))
            if first == nil { first = dir }
        }
        let maxDs = reports.map { $0.2.ppo?.points.map(\.d).max() ?? 0 }
        let common = maxDs.min() ?? 0
        var variants = zip(reports, maxDs).map { r, maxD -> SweepVariant in
            let (value, dir, report) = r
            let points = report.ppo?.points ?? []
            let near = points.sorted { abs($0.d - common) < abs($1.d - common) }.prefix(3)
            return SweepVariant(
                value: value, directory: dir.path, maxD: maxD,
                goldAtCommonD: near.isEmpty ? .nan : near.reduce(0) { $0 + $1.gold } / Double(near.count),
                ppoGold: report.ppo?.policy.meanGold ?? .nan, ppoWinRate: report.ppo?.policy.winRate,
                rewardHeldOutAccuracy: report.reward?.heldOutAccuracy ?? .nan,
                ppoOverOptimised: report.ppo?.overOptimisation.observed ?? false,
                bestOfNOverOptimised: report.bestOfN?.overOptimisation.observed ?? false,
                bestOfNFit: report.bestOfN?.fit)
        }
        variants.sort { $0.goldAtCommonD > $1.goldAtCommonD }
        let result = SweepResult(key: key, commonD: common, variants: variants)
        try DemoPipeline.encoder(pretty: true).encode(result).write(
            to: out.appendingPathComponent("sweep.json"), options: .atomic)
        return result
    }
}

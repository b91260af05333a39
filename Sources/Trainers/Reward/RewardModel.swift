// A trained reward model in use: the backbone (through its adapter, if any) and the `score` head read at
// the last real token of each sequence. Loaded from a PEFT adapter with `score` in `modules_to_save` or
// from an HF `…ForSequenceClassification` directory, both through `ModelLoader`.

import Datasets
import Foundation
import ModelExport
import ModelFormats
import Models
import TensorCore

public struct RewardModel: @unchecked Sendable {
    public let loaded: LoadedModel
    public let adapter: LoRAAdapter?
    public let head: ScalarHead
    /// Reward statistics on reference samples, for normalised scores (nil: not measured).
    public var normalization: RewardNormalization?

    public init(
        loaded: LoadedModel, adapter: LoRAAdapter?, head: ScalarHead, normalization: RewardNormalization? = nil
    ) {
        self.loaded = loaded
        self.adapter = adapter
        self.head = head
        self.normalization = normalization
    }

    /// Loads a reward model: `reward` is an HF sequence-classification directory (the model itself) or an adapter
    /// with a `score` head (a PEFT directory, a training output or a checkpoint) applied to `model`. A
    /// `reward_model.json` beside it supplies the normalisation and the tokenizer fingerprint, which must match
    /// the loaded tokenizer's.
    public static func load(
        reward: URL, model: String, form: ModelLoader.WeightForm = .dense, log: (String) -> Void = { _ in }
    ) throws -> RewardModel {
        let isModelDirectory = FileManager.default.fileExists(
            atPath: reward.appendingPathComponent("config.json").path)
        let loaded = try ModelLoader.load(
            model: isModelDirectory ? reward.path : model, form: form, adapter: isModelDirectory ? nil : reward,
            adapterName: RewardTrainer.adapterName, log: log)
        return try withCard(
            RewardModel(loaded), directory: isModelDirectory ? reward : try ModelLoader.adapterDirectory(reward),
            loadedOnto: isModelDirectory ? reward.path : model)
    }

    /// A reward adapter (with its `score` head) loaded onto an already loaded base — one base in memory for the
    /// policy, the reference and the reward model. The base must stay frozen (a LoRA policy).
    public static func load(reward: URL, onto loaded: LoadedModel, baseName: String) throws -> RewardModel {
        let withAdapter = try ModelLoader.load(adapter: reward, onto: loaded, name: RewardTrainer.adapterName)
        return try withCard(
            RewardModel(withAdapter), directory: try ModelLoader.adapterDirectory(reward), loadedOnto: baseName)
    }

    /// `rm` with the normalisation of the `reward_model.json` in `directory`, after checking its tokenizer.
    static func withCard(_ rm: RewardModel, directory: URL, loadedOnto: String) throws -> RewardModel {
        var rm = rm
        let cardURL = directory.appendingPathComponent(CheckpointLayout.rewardModelFile)
        guard FileManager.default.fileExists(atPath: cardURL.path) else { return rm }
        let card: RewardModelCard
        do {
            card = try JSONDecoder().decode(RewardModelCard.self, from: FileContents.read(cardURL))
        } catch {
            throw CheckpointError.invalidState(file: cardURL.path, reason: "unreadable: \(error)")
        }
        let fingerprint = rm.loaded.tokenizer.fingerprint
        guard card.tokenizerFingerprint == fingerprint else {
            throw CheckpointError.mismatch(
                file: cardURL.path, field: "tokenizer fingerprint",
                expected: card.tokenizerFingerprint.prefix(12) + "… (the reward model's, trained on "
                    + card.baseModel + ")",
                found: fingerprint.prefix(12) + "… (the tokenizer of \(loadedOnto))",
                hint: "load the reward model onto the model it was trained on (--model \(card.baseModel)).")
        }
        if let n = card.normalization, !(n.std > 0 && n.std.isFinite && n.mean.isFinite) {
            throw CheckpointError.invalidState(
                file: cardURL.path, reason: "normalization mean \(n.mean), std \(n.std): expected finite, std > 0")
        }
        rm.normalization = card.normalization
        return rm
    }

    /// The reward model `loaded` carries (its adapter and `score` head).
    public init(_ loaded: LoadedModel) throws {
        guard let head = loaded.heads[HFCheckpoint.scoreHeadName] else {
            throw ConfigError.invalid(
                field: "reward model", value: loaded.source.path,
                expected: "a PEFT adapter with a 'score' head (modules_to_save) or a "
                    + "…ForSequenceClassification directory, e.g. the adapter/ of `rlhf reward`")
        }
        self.init(loaded: loaded, adapter: loaded.adapter, head: head)
    }

    /// Scores of token sequences (prompt + response), `batchSize` at a time. Rows of one batch whose first
    /// `promptLengths` tokens are the same compute them once (`TokenBatch(rows:shareable:padID:)`).
    public func scores(_ rows: [[Int32]], promptLengths: [Int]? = nil, batchSize: Int = 8) throws -> [Double] {
        let model = loaded.model
        let batches = stride(from: 0, to: rows.count, by: batchSize).map {
            let range = $0..<min($0 + batchSize, rows.count)
            return TokenBatch(
                rows: Array(rows[range]), shareable: promptLengths.map { Array($0[range]) } ?? range.map { _ in 0 },
                padID: loaded.padTokenID)
        }
        for b in batches {
            try model.checkContext(
                b.longestRow, what: "a sequence of \(b.longestRow) tokens", hint: "Truncate it (max_length).")
        }
        guard let largest = batches.map(\.tokenCount).max() else { return [] }
        // One set of activations, sized for the largest chunk, serves every chunk.
        let acts = LlamaActivations(config: model.config, batchSize: 1, length: largest, checkpointed: true)
        return batches.flatMap { b in
            head.scores(hidden: model.forward(b, adapter: adapter, into: acts).pointer, batch: b).map(Double.init)
        }
    }

    /// (r − mean) / std with the stored statistics (Ziegler et al. 2019 §2.2; Stiennon et al. 2020 §3.4), or r
    /// itself when none were measured.
    public func normalized(_ r: Double) -> Double {
        guard let n = normalization else { return r }
        return (r - n.mean) / n.std
    }

    /// The Bradley–Terry loss, accuracy and margin of the model on `comparisons` (each response scored once).
    public func evaluate(_ comparisons: [EncodedComparison], batchSize: Int = 8) throws -> RewardLoss.Result {
        let (rows, prompts, groups) = RewardLoss.rows(comparisons)
        return RewardLoss.evaluate(
            rewards: try scores(rows, promptLengths: prompts, batchSize: batchSize), groups: groups)
    }

    /// Scores of each pair's chosen and rejected response.
    public func scores(_ pairs: [EncodedPreference], batchSize: Int = 8) throws -> [(chosen: Double, rejected: Double)]
    {
        let rows = pairs.flatMap { [$0.promptIDs + $0.chosenIDs, $0.promptIDs + $0.rejectedIDs] }
        let r = try scores(
            rows, promptLengths: pairs.flatMap { [$0.promptIDs.count, $0.promptIDs.count] }, batchSize: 2 * batchSize)
        return pairs.indices.map { (chosen: r[2 * $0], rejected: r[2 * $0 + 1]) }
    }
}

/// Mean and standard deviation of the rewards of reference samples.
public struct RewardNormalization: Codable, Sendable, Equatable {
    public var mean: Double
    public var std: Double
    public var samples: Int
    /// What was scored, e.g. "responses of the training comparisons".
    public var source: String

    public init(mean: Double, std: Double, samples: Int, source: String) {
        self.mean = mean
        self.std = std
        self.samples = samples
        self.source = source
    }

    /// The statistics of `rewards` (population standard deviation; 1 when they are all equal).
    public init(rewards: [Double], source: String) {
        let n = Double(rewards.count), mean = rewards.reduce(0, +) / n
        let variance = rewards.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
        self.init(mean: mean, std: variance > 0 ? variance.squareRoot() : 1, samples: rewards.count, source: source)
    }
}

/// `reward_model.json`: saved beside a reward model's adapter or model directory.
public struct RewardModelCard: Codable, Sendable, Equatable {
    public var baseModel: String
    public var tokenizerFingerprint: String
    public var normalization: RewardNormalization?

    enum CodingKeys: String, CodingKey {
        case baseModel = "base_model", tokenizerFingerprint = "tokenizer_fingerprint", normalization
    }

    public init(baseModel: String, tokenizerFingerprint: String, normalization: RewardNormalization?) {
        self.baseModel = baseModel
        self.tokenizerFingerprint = tokenizerFingerprint
        self.normalization = normalization
    }
}

extension RewardLoss {
    /// Every response of `comparisons` once (prompt + completion), each row's prompt length (the tokens its
    /// comparison's rows share), and each comparison as a group of those rows, best first.
    public static func rows(_ comparisons: [EncodedComparison]) -> (
        rows: [[Int32]], promptLengths: [Int], groups: [Group]
    ) {
        var rows: [[Int32]] = [], prompts: [Int] = [], groups: [Group] = []
        for c in comparisons {
            let first = rows.count
            rows += c.completionIDs.map { c.promptIDs + $0 }
            prompts += c.completionIDs.map { _ in c.promptIDs.count }
            groups.append(Group(ranked: c.ranking.map { first + $0 }, margin: c.margin ?? 0))
        }
        return (rows, prompts, groups)
    }
}

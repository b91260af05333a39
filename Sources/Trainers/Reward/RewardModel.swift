// A trained reward model in use: the backbone (through its adapter, if any) and the `score` head read at
// the last real token of each sequence. Loaded from a PEFT adapter with `score` in `modules_to_save` or
// from an HF `…ForSequenceClassification` directory, both through `ModelLoader`.

import Datasets
import Foundation
import ModelExport
import Models
import TensorCore

public struct RewardModel: @unchecked Sendable {
    public let loaded: LoadedModel
    public let adapter: LoRAAdapter?
    public let head: ScalarHead

    public init(loaded: LoadedModel, adapter: LoRAAdapter?, head: ScalarHead) {
        self.loaded = loaded
        self.adapter = adapter
        self.head = head
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

    /// Scores of token sequences (prompt + response), `batchSize` at a time.
    public func scores(_ rows: [[Int32]], batchSize: Int = 8) throws -> [Double] {
        let model = loaded.model
        var out: [Double] = []
        var start = 0
        while start < rows.count {
            let chunk = Array(rows[start..<min(start + batchSize, rows.count)])
            start += chunk.count
            let b = TokenBatch(rows: chunk, padID: loaded.padTokenID)
            try model.checkContext(
                b.length, what: "a sequence of \(b.length) tokens", hint: "Truncate it (max_length).")
            let acts = LlamaActivations(
                config: model.config, batchSize: b.batchSize, length: b.length, checkpointed: true)
            let hidden = model.forward(b, adapter: adapter, into: acts)
            out += head.scores(hidden: hidden.pointer, batch: b).map(Double.init)
        }
        return out
    }

    /// Scores of each pair's chosen and rejected response.
    public func scores(_ pairs: [EncodedPreference], batchSize: Int = 8) throws -> [(chosen: Double, rejected: Double)]
    {
        let chosen = try scores(pairs.map { $0.promptIDs + $0.chosenIDs }, batchSize: batchSize)
        let rejected = try scores(pairs.map { $0.promptIDs + $0.rejectedIDs }, batchSize: batchSize)
        return Array(zip(chosen, rejected))
    }
}

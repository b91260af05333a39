// Reading, splitting and encoding preference pairs (TRL's `{"prompt", "chosen", "rejected"}`, strings or
// message lists) for the reward model and the DPO family, with every count reported.

import ChatTemplates
import Datasets
import Foundation
import Tokenizers

public struct PreferenceData: Sendable {
    public var train: [EncodedPreference]
    public var eval: [EncodedPreference]
    /// Human-readable lines: records read/skipped, truncated and dropped counts.
    public var report: [String]

    /// Reads `trainFile` (and `evalFile`, or a held-out `eval_fraction` of it), samples `data_fraction`,
    /// and encodes with the chat template, truncating to `max_length` (prompt kept to `maxPromptLength`).
    public static func prepare(
        training t: TrainingArguments, maxPromptLength: Int, tokenizer: Tokenizer,
        chatTemplate: ChatTemplate?, trainFile: URL, evalFile: URL?
    ) throws -> PreferenceData {
        let options = ReadOptions(skipInvalid: t.skipInvalid)
        let full = try Dataset<PreferenceExample>(contentsOf: trainFile, options: options)
        var split = SplitConfig()
        split.seed = t.seed
        split.dataFraction = Double(t.dataFraction)
        split.evalFraction = evalFile == nil ? Double(t.evalFraction) : 0
        let (trainSet, heldOut) = try full.split(split)
        var encoding = PreferenceEncodingConfig()
        encoding.maxLength = t.maxLength
        encoding.maxPromptLength = maxPromptLength
        let encoder = try PreferenceEncoder(tokenizer: tokenizer, chatTemplate: chatTemplate, config: encoding)
        var report = [
            "\(trainFile.lastPathComponent): \(full.report.recordsRead) records read, \(full.report.skipped) skipped"
                + (full.report.skipped > 0 ? " (\(full.report.description))" : "")
        ]
        let train = try encoder.encode(trainSet)
        report.append(
            "train: \(train.pairs.count) pairs (data_fraction \(t.dataFraction)); \(train.report.description)")
        var eval: [EncodedPreference] = []
        if let evalFile {
            let encoded = try encoder.encode(try Dataset<PreferenceExample>(contentsOf: evalFile, options: options))
            eval = encoded.pairs
            report.append("eval (\(evalFile.lastPathComponent)): \(eval.count) pairs; \(encoded.report.description)")
        } else if heldOut.count > 0 {
            eval = try encoder.encode(heldOut).pairs
            report.append("eval (held out \(t.evalFraction) of the training file): \(eval.count) pairs")
        }
        return PreferenceData(train: train.pairs, eval: eval, report: report)
    }
}

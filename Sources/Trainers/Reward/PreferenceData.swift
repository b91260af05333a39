// Reading, splitting and encoding preference data for the reward model (comparisons: pairs, with an optional
// margin, and K-wise rankings) and the DPO family (pairs), with every count reported.

import ChatTemplates
import Datasets
import Foundation
import Tokenizers

/// Preference pairs for the DPO family (TRL's `{"prompt", "chosen", "rejected"}`, strings or message lists, or the
/// implicit-prompt form).
public struct PreferenceData: Sendable {
    public var train: [EncodedPreference]
    public var eval: [EncodedPreference]
    /// Human-readable lines: records read/skipped, truncated, identical and dropped counts.
    public var report: [String]

    /// Reads `trainFile` (and `evalFile`, or a held-out `eval_fraction` of it), samples `data_fraction`,
    /// and encodes with the chat template, truncating to `max_length` (prompt kept to `maxPromptLength`).
    public static func prepare(
        training t: TrainingArguments, maxPromptLength: Int, tokenizer: Tokenizer,
        chatTemplate: ChatTemplate?, trainFile: URL, evalFile: URL?
    ) throws -> PreferenceData {
        let (train, eval, report) = try prepareSplit(
            PreferenceExample.self, training: t, maxPromptLength: maxPromptLength, tokenizer: tokenizer,
            chatTemplate: chatTemplate, trainFile: trainFile, evalFile: evalFile, unit: "pairs"
        ) { encoder, dataset in try encoder.encode(dataset) }
        return PreferenceData(train: train, eval: eval, report: report)
    }
}

/// Comparisons for a reward model: pairs in any `PreferenceData` shape (each may carry a `margin`) and K-wise
/// rankings `{"prompt", "completions", "ranking"}`.
public struct ComparisonData: Sendable {
    public var train: [EncodedComparison]
    public var eval: [EncodedComparison]
    public var report: [String]

    public static func prepare(
        training t: TrainingArguments, maxPromptLength: Int, tokenizer: Tokenizer,
        chatTemplate: ChatTemplate?, trainFile: URL, evalFile: URL?
    ) throws -> ComparisonData {
        let (train, eval, report) = try prepareSplit(
            Comparison.self, training: t, maxPromptLength: maxPromptLength, tokenizer: tokenizer,
            chatTemplate: chatTemplate, trainFile: trainFile, evalFile: evalFile, unit: "comparisons"
        ) { encoder, dataset in try encoder.encode(dataset) }
        return ComparisonData(train: train, eval: eval, report: report)
    }

    /// Reads and encodes one file in full (evaluation).
    public static func read(
        _ file: URL, maxLength: Int, maxPromptLength: Int, tokenizer: Tokenizer, chatTemplate: ChatTemplate?
    ) throws -> (comparisons: [EncodedComparison], report: EncodingReport) {
        var encoding = PreferenceEncodingConfig()
        encoding.maxLength = maxLength
        encoding.maxPromptLength = maxPromptLength
        let encoder = try PreferenceEncoder(tokenizer: tokenizer, chatTemplate: chatTemplate, config: encoding)
        return try encoder.encode(try Dataset<Comparison>(contentsOf: file))
    }
}

/// The split and encoding both preference data sources share.
func prepareSplit<Record: DatasetRecord, Encoded>(
    _: Record.Type, training t: TrainingArguments, maxPromptLength: Int, tokenizer: Tokenizer,
    chatTemplate: ChatTemplate?, trainFile: URL, evalFile: URL?, unit: String,
    encode: (PreferenceEncoder, Dataset<Record>) throws -> ([Encoded], EncodingReport)
) throws -> (train: [Encoded], eval: [Encoded], report: [String]) {
    let options = ReadOptions(skipInvalid: t.skipInvalid)
    let full = try Dataset<Record>(contentsOf: trainFile, options: options)
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
    let (train, trainReport) = try encode(encoder, trainSet)
    report.append("train: \(train.count) \(unit) (data_fraction \(t.dataFraction)); \(trainReport.description)")
    var eval: [Encoded] = []
    if let evalFile {
        let (encoded, evalReport) = try encode(encoder, try Dataset<Record>(contentsOf: evalFile, options: options))
        eval = encoded
        report.append("eval (\(evalFile.lastPathComponent)): \(eval.count) \(unit); \(evalReport.description)")
    } else if heldOut.count > 0 {
        eval = try encode(encoder, heldOut).0
        report.append("eval (held out \(t.evalFraction) of the training file): \(eval.count) \(unit)")
    }
    return (train, eval, report)
}

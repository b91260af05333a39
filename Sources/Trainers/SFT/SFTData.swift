// Reading, splitting and encoding SFT data for the trainer, with every count reported.

import ChatTemplates
import Datasets
import Foundation
import Tokenizers

public struct SFTData: Sendable {
    public var train: [EncodedExample]
    public var eval: [EncodedExample]
    /// Human-readable lines: records read/skipped, truncated and dropped counts.
    public var report: [String]

    /// Reads `trainFile` (and `evalFile`, or a held-out `eval_fraction` of the training file),
    /// samples `data_fraction`, and encodes with the chat template and loss mask.
    public static func prepare(
        config: SFTConfig, tokenizer: Tokenizer, chatTemplate: ChatTemplate?,
        trainFile: URL, evalFile: URL?
    ) throws -> SFTData {
        let options = ReadOptions(skipInvalid: config.skipInvalid)
        let full = try Dataset<SFTExample>(contentsOf: trainFile, options: options)
        var split = SplitConfig()
        split.seed = config.seed
        split.dataFraction = Double(config.dataFraction)
        split.evalFraction = evalFile == nil ? Double(config.evalFraction) : 0
        let (trainSet, heldOut) = try full.split(split)
        var encoding = SFTEncodingConfig()
        encoding.maxLength = config.maxLength
        encoding.loss = config.loss
        let encoder = try SFTEncoder(tokenizer: tokenizer, chatTemplate: chatTemplate, config: encoding)
        var report = [
            "\(trainFile.lastPathComponent): \(full.report.recordsRead) records read, \(full.report.skipped) skipped"
                + (full.report.skipped > 0 ? " (\(full.report.description))" : "")
        ]
        let train = try encoder.encode(trainSet)
        report.append(
            "train: \(train.examples.count) examples (data_fraction \(config.dataFraction));"
                + " \(train.report.description)"
        )
        var eval: [EncodedExample] = []
        if let evalFile {
            let evalSet = try Dataset<SFTExample>(contentsOf: evalFile, options: options)
            let encoded = try encoder.encode(evalSet)
            eval = encoded.examples
            report.append("eval (\(evalFile.lastPathComponent)): \(eval.count) examples; \(encoded.report.description)")
        } else if heldOut.count > 0 {
            let encoded = try encoder.encode(heldOut)
            eval = encoded.examples
            report.append("eval (held out \(config.evalFraction) of the training file): \(eval.count) examples")
        }
        return SFTData(train: train.examples, eval: eval, report: report)
    }
}

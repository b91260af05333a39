// Labelled completions for KTO (TRL's unpaired preference format `{"prompt", "completion", "label"}`), and the
// mismatched completion each example is paired with for the reference point z₀.

import ChatTemplates
import Datasets
import Foundation
import Tokenizers

public struct KTOData: Sendable {
    public var train: [EncodedUnpaired]
    public var eval: [EncodedUnpaired]
    public var report: [String]

    public static func prepare(
        training t: TrainingArguments, maxPromptLength: Int, tokenizer: Tokenizer,
        chatTemplate: ChatTemplate?, trainFile: URL, evalFile: URL?
    ) throws -> KTOData {
        let (train, eval, split) = try prepareSplit(
            UnpairedExample.self, training: t, maxPromptLength: maxPromptLength, tokenizer: tokenizer,
            chatTemplate: chatTemplate, trainFile: trainFile, evalFile: evalFile, unit: "completions"
        ) { encoder, dataset in try encoder.encode(dataset) }
        let desirable = train.filter(\.label).count
        let report =
            split + [
                "\(desirable) desirable, \(train.count - desirable) undesirable training completions"
                    + (desirable == 0 || desirable == train.count
                        ? " (KTO learns from both kinds; with one, it only moves away from or toward the reference)"
                        : "")
            ]
        return KTOData(train: train, eval: eval, report: report)
    }

    /// The completion example `i` is paired with for z₀: the previous example's (TRL's shift by one), cut to the
    /// length of `i`'s own completion when longer so that the row fits where `i`'s does.
    public static func mismatched(_ examples: [EncodedUnpaired], _ i: Int) -> [Int32] {
        let other = examples[(i + examples.count - 1) % examples.count].completionIDs
        return Array(other.prefix(max(1, examples[i].completionIDs.count)))
    }
}

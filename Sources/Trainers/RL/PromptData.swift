// RL prompts (TRL's prompt-only format, `{"prompt": string | [messages]}`), encoded with the generation prompt
// and kept to `max_length − max_completion_length` tokens (longer ones keep their last tokens, counted).

import ChatTemplates
import Datasets
import Foundation
import Models
import Tokenizers

public struct PromptData: Sendable {
    public var train: [[Int32]]
    /// Each prompt's reference answer (`answer` / `solution`), aligned with `train`.
    public var answers: [String?]
    public var report: [String]

    public static func prepare(
        training t: TrainingArguments, maxCompletionLength: Int, tokenizer: Tokenizer, chatTemplate: ChatTemplate?,
        file: URL
    ) throws -> PromptData {
        let room = t.maxLength - maxCompletionLength
        guard room >= 1 else {
            throw ConfigError.invalid(
                field: "max_length", value: "\(t.maxLength)",
                expected: "> max_completion_length (\(maxCompletionLength)): prompts need room")
        }
        let full = try Dataset<PromptExample>(contentsOf: file, options: ReadOptions(skipInvalid: t.skipInvalid))
        var split = SplitConfig()
        split.seed = t.seed
        split.dataFraction = Double(t.dataFraction)
        let (subset, _) = try full.split(split)
        let encoded = try PromptEncoder(tokenizer: tokenizer, chatTemplate: chatTemplate, maxLength: room)
            .encode(subset)
        return PromptData(
            train: encoded.prompts, answers: subset.records.map(\.answer),
            report: [
                "\(file.lastPathComponent): \(full.report.recordsRead) records read, \(full.report.skipped) skipped",
                "prompts: \(encoded.prompts.count) (data_fraction \(t.dataFraction)); \(encoded.report.description)",
            ])
    }
}

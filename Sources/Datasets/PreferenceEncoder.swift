// Preference pairs and RL prompts to token ids, following TRL's DPOTrainer / RewardTrainer
// tokenization: the prompt is rendered with the generation prompt; each completion is what the
// chat template adds after it when the conversation includes the reply (content, end-of-turn
// token, newline); plain-text completions get EOS appended. Prompts are cut from the start (the
// latest turns are kept), completions from the end; every cut or drop is counted.

import ChatTemplates
import Tokenizers

/// Settings of `PreferenceEncoder`. Defaults live on these properties and nowhere else.
public struct PreferenceEncodingConfig: Sendable, Equatable, Codable {
    /// Longest prompt + completion, in tokens.
    public var maxLength = 512
    /// When a pair is too long, the prompt keeps at least this many (final) tokens; the
    /// completions are cut to what is left (TRL's `max_prompt_length`).
    public var maxPromptLength = 256
    /// Append EOS after plain-text completions.
    public var appendsEOS = true
    public var contentTokenization = ContentTokenization.automatic

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxLength, maxPromptLength, appendsEOS, contentTokenization
    }

    /// Decodes a partial JSON object over the defaults; unknown keys are an error.
    public init(from decoder: any Decoder) throws {
        self.init()
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxLength = try c.decodeIfPresent(Int.self, forKey: .maxLength) ?? maxLength
        maxPromptLength =
            try c.decodeIfPresent(Int.self, forKey: .maxPromptLength) ?? maxPromptLength
        appendsEOS = try c.decodeIfPresent(Bool.self, forKey: .appendsEOS) ?? appendsEOS
        contentTokenization =
            try c.decodeIfPresent(ContentTokenization.self, forKey: .contentTokenization)
            ?? contentTokenization
        try validate()
    }

    public func validate() throws(DatasetConfigError) {
        guard maxLength > 1 else {
            throw DatasetConfigError(field: "maxLength", value: "\(maxLength)", expected: "> 1")
        }
        guard maxPromptLength > 0 && maxPromptLength < maxLength else {
            throw DatasetConfigError(
                field: "maxPromptLength", value: "\(maxPromptLength)",
                expected: "> 0 and < maxLength (\(maxLength))")
        }
    }
}

/// A tokenized preference pair. The model input for each side is `promptIDs + chosenIDs` or
/// `promptIDs + rejectedIDs`; the loss is on the completion tokens.
public struct EncodedPreference: Sendable, Equatable, Codable {
    public var promptIDs: [Int32]
    public var chosenIDs: [Int32]
    public var rejectedIDs: [Int32]
    public var sourceLine: Int
    public var isTruncated: Bool
}

/// Tokenized RL prompts (with the generation prompt), truncation counted in the report.
public struct EncodedPrompts: Sendable {
    public var prompts: [[Int32]]
    public var sourceLines: [Int]
    public var report: EncodingReport
}

/// Tokenizes preference pairs for reward modelling and DPO.
public struct PreferenceEncoder: Sendable {
    public let config: PreferenceEncodingConfig
    let chat: ChatEncoder

    public init(
        tokenizer: Tokenizer, chatTemplate: ChatTemplate? = nil,
        config: PreferenceEncodingConfig = PreferenceEncodingConfig()
    ) throws {
        try config.validate()
        self.config = config
        chat = ChatEncoder(
            tokenizer: tokenizer, template: try chatTemplate ?? SFTEncoder.template(of: tokenizer),
            tokenization: config.contentTokenization)
    }

    /// Encodes one pair in full (no truncation).
    public func encode(_ example: PreferenceExample) throws(RecordError) -> EncodedPreference {
        switch example {
        case .text(let prompt, let chosen, let rejected):
            func plain(_ text: String, eos: Bool) -> [Int32] {
                let bytes = Array(text.utf8)
                var ids = chat.tokenize(
                    SegmentedText(
                        bytes: bytes, content: [(0..<bytes.count, 0)],
                        hasSpecialText: chat.containsSpecialText(bytes))
                ).ids
                if eos, config.appendsEOS, let id = chat.tokenizer.eosTokenID {
                    ids.append(Int32(id))
                }
                return ids
            }
            return EncodedPreference(
                promptIDs: plain(prompt, eos: false), chosenIDs: plain(chosen, eos: true),
                rejectedIDs: plain(rejected, eos: true), sourceLine: 0, isTruncated: false)

        case .conversation(let prompt, let chosen, let rejected):
            let promptText = try chat.render(prompt, addGenerationPrompt: true)
            func completion(_ reply: [Message], field: String) throws(RecordError) -> [Int32] {
                let full = try chat.render(prompt + reply, addGenerationPrompt: false)
                guard full.bytes.starts(with: promptText.bytes) else {
                    throw RecordError(
                        field: field,
                        problem: .templateFailed(
                            message: "the rendered prompt (with generation prompt) is not a "
                                + "prefix of the rendered prompt + \(field)"))
                }
                return chat.tokenize(full.suffix(from: promptText.bytes.count)).ids
            }
            return EncodedPreference(
                promptIDs: chat.tokenize(promptText).ids,
                chosenIDs: try completion(chosen, field: "chosen"),
                rejectedIDs: try completion(rejected, field: "rejected"), sourceLine: 0,
                isTruncated: false)
        }
    }

    /// Encodes a dataset with truncation: when prompt + the longer completion exceeds
    /// `maxLength`, the prompt keeps its last max(`maxPromptLength`, room left by the longer
    /// completion) tokens and the completions keep their first tokens up to `maxLength`. Pairs
    /// whose completions become identical are dropped. All counted in the report.
    public func encode(_ dataset: Dataset<PreferenceExample>) throws(DataError)
        -> (pairs: [EncodedPreference], report: EncodingReport)
    {
        var report = EncodingReport(file: dataset.file)
        var pairs: [EncodedPreference] = []
        pairs.reserveCapacity(dataset.count)
        for (record, line) in zip(dataset.records, dataset.lineNumbers) {
            var pair: EncodedPreference
            do {
                pair = try encode(record)
            } catch {
                throw error.located(file: dataset.file, line: line)
            }
            pair.sourceLine = line
            let longer = max(pair.chosenIDs.count, pair.rejectedIDs.count)
            report.longest = max(report.longest, pair.promptIDs.count + longer)
            if pair.promptIDs.count + longer > config.maxLength {
                let promptKeeps = min(
                    pair.promptIDs.count, max(config.maxPromptLength, config.maxLength - longer))
                pair.promptIDs = Array(pair.promptIDs.suffix(promptKeeps))
                let room = config.maxLength - promptKeeps
                pair.chosenIDs = Array(pair.chosenIDs.prefix(room))
                pair.rejectedIDs = Array(pair.rejectedIDs.prefix(room))
                pair.isTruncated = true
                report.truncated += 1
                report.truncatedLines.append(line)
                if pair.chosenIDs == pair.rejectedIDs {
                    report.dropped += 1
                    report.droppedLines.append(line)
                    continue
                }
            }
            report.examples += 1
            report.tokens += pair.promptIDs.count + pair.chosenIDs.count + pair.rejectedIDs.count
            pairs.append(pair)
        }
        return (pairs, report)
    }
}

/// Tokenizes prompts for RL rollouts: conversations get the chat template with the generation
/// prompt; plain-text prompts are tokenized as they are.
public struct PromptEncoder: Sendable {
    /// Longer prompts keep their last `maxLength` tokens (counted in the report).
    public let maxLength: Int
    let chat: ChatEncoder

    public init(
        tokenizer: Tokenizer, chatTemplate: ChatTemplate? = nil, maxLength: Int = 512,
        contentTokenization: ContentTokenization = .automatic
    ) throws {
        guard maxLength > 0 else {
            throw DatasetConfigError(field: "maxLength", value: "\(maxLength)", expected: "> 0")
        }
        self.maxLength = maxLength
        chat = ChatEncoder(
            tokenizer: tokenizer, template: try chatTemplate ?? SFTEncoder.template(of: tokenizer),
            tokenization: contentTokenization)
    }

    /// The prompt's ids in full (no truncation).
    public func encode(_ example: PromptExample) throws(RecordError) -> [Int32] {
        switch example {
        case .text(let text):
            let bytes = Array(text.utf8)
            return chat.tokenize(
                SegmentedText(
                    bytes: bytes, content: [(0..<bytes.count, 0)],
                    hasSpecialText: chat.containsSpecialText(bytes))
            ).ids
        case .conversation(let messages):
            return chat.tokenize(try chat.render(messages, addGenerationPrompt: true)).ids
        }
    }

    /// Encodes a dataset, keeping the last `maxLength` tokens of longer prompts.
    public func encode(_ dataset: Dataset<PromptExample>) throws(DataError) -> EncodedPrompts {
        var report = EncodingReport(file: dataset.file)
        var prompts: [[Int32]] = []
        prompts.reserveCapacity(dataset.count)
        for (record, line) in zip(dataset.records, dataset.lineNumbers) {
            var ids: [Int32]
            do {
                ids = try encode(record)
            } catch {
                throw error.located(file: dataset.file, line: line)
            }
            report.longest = max(report.longest, ids.count)
            if ids.count > maxLength {
                ids = Array(ids.suffix(maxLength))
                report.truncated += 1
                report.truncatedLines.append(line)
            }
            report.examples += 1
            report.tokens += ids.count
            prompts.append(ids)
        }
        return EncodedPrompts(prompts: prompts, sourceLines: dataset.lineNumbers, report: report)
    }
}

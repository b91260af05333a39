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

/// A tokenized comparison: a prompt, K ≥ 2 completions and their order from best to worst. A pair is K = 2 with
/// ranking [0, 1] (chosen first); each model input is `promptIDs + completionIDs[i]`.
public struct EncodedComparison: Sendable, Equatable, Codable {
    public var promptIDs: [Int32]
    public var completionIDs: [[Int32]]
    /// Completion indices, best first.
    public var ranking: [Int]
    /// Llama 2's margin (pairs only).
    public var margin: Double?
    public var sourceLine: Int
    public var isTruncated: Bool

    public init(
        promptIDs: [Int32], completionIDs: [[Int32]], ranking: [Int], margin: Double? = nil, sourceLine: Int = 0,
        isTruncated: Bool = false
    ) {
        self.promptIDs = promptIDs
        self.completionIDs = completionIDs
        self.ranking = ranking
        self.margin = margin
        self.sourceLine = sourceLine
        self.isTruncated = isTruncated
    }

    /// A pair as a comparison.
    public init(_ pair: EncodedPreference, margin: Double? = nil) {
        self.init(
            promptIDs: pair.promptIDs, completionIDs: [pair.chosenIDs, pair.rejectedIDs], ranking: [0, 1],
            margin: margin, sourceLine: pair.sourceLine, isTruncated: pair.isTruncated)
    }

    /// All C(K, 2) (better, worse) completion-index pairs.
    public var orderedPairs: [(better: Int, worse: Int)] {
        var out: [(Int, Int)] = []
        for i in ranking.indices { for j in (i + 1)..<ranking.count { out.append((ranking[i], ranking[j])) } }
        return out
    }

    var hasEqualCompletions: Bool { Set(completionIDs).count < completionIDs.count }
}

/// A tokenized labelled completion (KTO): the model input is `promptIDs + completionIDs`.
public struct EncodedUnpaired: Sendable, Equatable, Codable {
    public var promptIDs: [Int32]
    public var completionIDs: [Int32]
    /// Desirable (true) or undesirable (false).
    public var label: Bool
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
        let (prompt, completions) =
            switch example {
            case .text(let prompt, let chosen, let rejected):
                (plain(prompt, eos: false), [plain(chosen, eos: true), plain(rejected, eos: true)])
            case .conversation(let prompt, let chosen, let rejected):
                try conversation(prompt, replies: [chosen, rejected], fields: ["chosen", "rejected"])
            }
        return EncodedPreference(
            promptIDs: prompt, chosenIDs: completions[0], rejectedIDs: completions[1], sourceLine: 0,
            isTruncated: false)
    }

    /// Encodes one comparison in full (no truncation): a pair is K = 2 with ranking [0, 1].
    public func encode(_ example: Comparison) throws(RecordError) -> EncodedComparison {
        switch example {
        case .pair(let pair, let margin):
            let p = try encode(pair)
            return EncodedComparison(
                promptIDs: p.promptIDs, completionIDs: [p.chosenIDs, p.rejectedIDs], ranking: [0, 1], margin: margin,
                sourceLine: 0, isTruncated: false)
        case .ranked(let completions, let ranking):
            let (prompt, ids) =
                switch completions {
                case .text(let prompt, let texts):
                    (plain(prompt, eos: false), texts.map { plain($0, eos: true) })
                case .conversation(let prompt, let replies):
                    try conversation(
                        prompt, replies: replies, fields: replies.indices.map { "completions[\($0)]" })
                }
            return EncodedComparison(
                promptIDs: prompt, completionIDs: ids, ranking: ranking, margin: nil, sourceLine: 0,
                isTruncated: false)
        }
    }

    /// Encodes one labelled completion in full (no truncation).
    public func encode(_ example: UnpairedExample) throws(RecordError) -> EncodedUnpaired {
        let (prompt, completion): ([Int32], [Int32])
        switch example.completion {
        case .text(let p, let c):
            (prompt, completion) = (plain(p, eos: false), plain(c, eos: true))
        case .conversationalPromptCompletion(let p, let c):
            let (ids, replies) = try conversation(p, replies: [c], fields: ["completion"])
            (prompt, completion) = (ids, replies[0])
        case .conversation:
            throw RecordError(
                field: "completion",
                problem: .invalidValue(expected: "a prompt and a completion", found: "a whole conversation"))
        }
        return EncodedUnpaired(
            promptIDs: prompt, completionIDs: completion, label: example.label, sourceLine: 0, isTruncated: false)
    }

    /// Encodes labelled completions, truncated like pairs (`truncate`), counted in the report.
    public func encode(_ dataset: Dataset<UnpairedExample>) throws(DataError)
        -> (examples: [EncodedUnpaired], report: EncodingReport)
    {
        var report = EncodingReport(file: dataset.file)
        var out: [EncodedUnpaired] = []
        for (record, line) in zip(dataset.records, dataset.lineNumbers) {
            var e: EncodedUnpaired
            do {
                e = try encode(record)
            } catch {
                throw error.located(file: dataset.file, line: line)
            }
            report.longest = max(report.longest, e.promptIDs.count + e.completionIDs.count)
            var c = EncodedComparison(promptIDs: e.promptIDs, completionIDs: [e.completionIDs], ranking: [0])
            if truncate(&c) {
                e.promptIDs = c.promptIDs
                e.completionIDs = c.completionIDs[0]
                e.isTruncated = true
                report.truncated += 1
                report.truncatedLines.append(line)
            }
            e.sourceLine = line
            report.examples += 1
            report.tokens += e.promptIDs.count + e.completionIDs.count
            out.append(e)
        }
        return (out, report)
    }

    /// Plain text tokenized as it is (EOS appended to completions when `appendsEOS`).
    private func plain(_ text: String, eos: Bool) -> [Int32] {
        let bytes = Array(text.utf8)
        var ids = chat.tokenize(
            SegmentedText(
                bytes: bytes, content: [(0..<bytes.count, 0)], hasSpecialText: chat.containsSpecialText(bytes))
        ).ids
        if eos, config.appendsEOS, let id = chat.tokenizer.eosTokenID { ids.append(Int32(id)) }
        return ids
    }

    /// The prompt rendered with the generation prompt, and each reply as what the template adds after it.
    private func conversation(_ prompt: [Message], replies: [[Message]], fields: [String]) throws(RecordError)
        -> ([Int32], [[Int32]])
    {
        let promptText = try chat.render(prompt, addGenerationPrompt: true)
        var out: [[Int32]] = []
        for (reply, field) in zip(replies, fields) {
            let full = try chat.render(prompt + reply, addGenerationPrompt: false)
            guard full.bytes.starts(with: promptText.bytes) else {
                throw RecordError(
                    field: field,
                    problem: .templateFailed(
                        message: "the rendered prompt (with generation prompt) is not a "
                            + "prefix of the rendered prompt + \(field)"))
            }
            out.append(chat.tokenize(full.suffix(from: promptText.bytes.count)).ids)
        }
        return (chat.tokenize(promptText).ids, out)
    }

    /// Encodes a dataset with truncation (see `truncate`). Pairs whose two sides are the same tokens carry no
    /// preference and are skipped (`identical`); pairs whose sides become the same by truncation are dropped.
    /// All counted in the report.
    public func encode(_ dataset: Dataset<PreferenceExample>) throws(DataError)
        -> (pairs: [EncodedPreference], report: EncodingReport)
    {
        let (encoded, report) = try encode(dataset.records, lines: dataset.lineNumbers, file: dataset.file) {
            record throws(RecordError) in
            let p = try encode(record)
            return EncodedComparison(
                promptIDs: p.promptIDs, completionIDs: [p.chosenIDs, p.rejectedIDs], ranking: [0, 1], margin: nil,
                sourceLine: 0, isTruncated: false)
        }
        let pairs = encoded.map {
            EncodedPreference(
                promptIDs: $0.promptIDs, chosenIDs: $0.completionIDs[0], rejectedIDs: $0.completionIDs[1],
                sourceLine: $0.sourceLine, isTruncated: $0.isTruncated)
        }
        return (pairs, report)
    }

    /// Encodes comparisons (pairs and K-wise rankings) with the same rules: a group with two completions of the
    /// same tokens is skipped (`identical`) or, when truncation made them equal, dropped.
    public func encode(_ dataset: Dataset<Comparison>) throws(DataError)
        -> (comparisons: [EncodedComparison], report: EncodingReport)
    {
        try encode(dataset.records, lines: dataset.lineNumbers, file: dataset.file) { record throws(RecordError) in
            try encode(record)
        }
    }

    private func encode<Record>(
        _ records: [Record], lines: [Int], file: String,
        _ one: (Record) throws(RecordError) -> EncodedComparison
    ) throws(DataError) -> ([EncodedComparison], EncodingReport) {
        var report = EncodingReport(file: file)
        var out: [EncodedComparison] = []
        out.reserveCapacity(records.count)
        for (record, line) in zip(records, lines) {
            var c: EncodedComparison
            do {
                c = try one(record)
            } catch {
                throw error.located(file: file, line: line)
            }
            c.sourceLine = line
            report.longest = max(report.longest, c.promptIDs.count + (c.completionIDs.map(\.count).max() ?? 0))
            if c.hasEqualCompletions {
                report.identical += 1
                report.identicalLines.append(line)
                continue
            }
            if truncate(&c) {
                report.truncated += 1
                report.truncatedLines.append(line)
                if c.hasEqualCompletions {
                    report.dropped += 1
                    report.droppedLines.append(line)
                    continue
                }
            }
            report.examples += 1
            report.tokens += c.promptIDs.count + c.completionIDs.reduce(0) { $0 + $1.count }
            out.append(c)
        }
        return (out, report)
    }

    /// When prompt + the longest completion exceeds `maxLength`, the prompt keeps its last
    /// max(`maxPromptLength`, room left by the longest completion) tokens and the completions keep their first
    /// tokens up to `maxLength`. Returns whether anything was cut.
    func truncate(_ c: inout EncodedComparison) -> Bool {
        let longest = c.completionIDs.map(\.count).max() ?? 0
        guard c.promptIDs.count + longest > config.maxLength else { return false }
        let promptKeeps = min(c.promptIDs.count, max(config.maxPromptLength, config.maxLength - longest))
        c.promptIDs = Array(c.promptIDs.suffix(promptKeeps))
        let room = config.maxLength - promptKeeps
        c.completionIDs = c.completionIDs.map { Array($0.prefix(room)) }
        c.isTruncated = true
        return true
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
        switch example.prompt {
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

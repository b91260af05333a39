// Supervised fine-tuning examples to token ids and loss masks, following TRL's SFTTrainer:
// conversations are rendered with the chat template (no generation prompt) and trained on the
// assistant turns (`assistant_only_loss`); prompt-completion records are trained on the
// completion only (`completion_only_loss`), plain-text completions followed by EOS. Examples are
// cut to `maxLength` from the end; every cut or dropped example is counted in the report.

import ChatTemplates
import Tokenizers

/// Tokenizes SFT examples with loss masks.
///
/// ```swift
/// let encoder = try SFTEncoder(tokenizer: tokenizer)          // template from the tokenizer
/// let encoded = try encoder.encode(try Dataset<SFTExample>(contentsOf: url))
/// print(encoded.report)   // truncated / dropped counts with line numbers
/// ```
public struct SFTEncoder: Sendable {
    public let config: SFTEncodingConfig
    let chat: ChatEncoder

    /// - Parameters:
    ///   - tokenizer: The model's tokenizer.
    ///   - chatTemplate: The template for conversational records; nil parses
    ///     `tokenizer.chatTemplate` (plain-text records need none).
    ///   - config: Length limit, loss scope, EOS and tokenization mode.
    /// - Throws: `DataError` when the tokenizer's template does not parse;
    ///   `DatasetConfigError` for an invalid config.
    public init(
        tokenizer: Tokenizer, chatTemplate: ChatTemplate? = nil,
        config: SFTEncodingConfig = SFTEncodingConfig()
    ) throws {
        try config.validate()
        self.config = config
        chat = ChatEncoder(
            tokenizer: tokenizer, template: try chatTemplate ?? Self.template(of: tokenizer),
            tokenization: config.contentTokenization)
    }

    static func template(of tokenizer: Tokenizer) throws(DataError) -> ChatTemplate? {
        guard let source = tokenizer.chatTemplate else { return nil }
        do {
            return try ChatTemplate(source: source)
        } catch {
            throw DataError(
                file: "tokenizer.chat_template",
                problem: .templateFailed(message: error.description))
        }
    }

    /// Encodes one example in full (no truncation).
    /// - Throws: `RecordError` when the template fails or content cannot be isolated.
    public func encode(_ example: SFTExample) throws(RecordError) -> EncodedExample {
        try encodeWithDetails(example).example
    }

    /// Encodes a dataset: each example is truncated to `config.maxLength`; examples with no
    /// trained token left are dropped. Both are counted, with line numbers, in the report.
    /// - Throws: `DataError` naming the file and line of a record that cannot be encoded.
    /// - Complexity: O(total text length).
    public func encode(_ dataset: Dataset<SFTExample>) throws(DataError) -> EncodedDataset {
        var report = EncodingReport(file: dataset.file)
        var examples: [EncodedExample] = []
        examples.reserveCapacity(dataset.count)
        for (record, line) in zip(dataset.records, dataset.lineNumbers) {
            var encoded: (example: EncodedExample, isSegmented: Bool)
            do {
                encoded = try encodeWithDetails(record)
            } catch {
                throw error.located(file: dataset.file, line: line)
            }
            if encoded.isSegmented { report.segmented += 1 }
            report.longest = max(report.longest, encoded.example.ids.count)
            encoded.example.sourceLine = line
            let example = encoded.example.truncated(to: config.maxLength)
            if example.isTruncated {
                report.truncated += 1
                report.truncatedLines.append(line)
            }
            guard example.lossMask.contains(true) else {
                report.dropped += 1
                report.droppedLines.append(line)
                continue
            }
            report.examples += 1
            report.tokens += example.ids.count
            report.trainedTokens += example.trainedTokenCount
            examples.append(example)
        }
        return EncodedDataset(examples: examples, report: report)
    }

    func encodeWithDetails(_ example: SFTExample) throws(RecordError)
        -> (example: EncodedExample, isSegmented: Bool)
    {
        switch example {
        case .conversation(let messages):
            let text = try chat.render(messages, addGenerationPrompt: false)
            let tokens = chat.tokenize(text)
            let mask: [Bool]
            if config.loss == .allTokens {
                mask = Array(repeating: true, count: tokens.ids.count)
            } else {
                mask = assistantMask(tokens, text: text, messages: messages)
            }
            return (EncodedExample(ids: tokens.ids, lossMask: mask), text.hasSpecialText)

        case .text(let prompt, let completion):
            let promptBytes = Array(prompt.utf8)
            let bytes = promptBytes + Array(completion.utf8)
            let text = SegmentedText(
                bytes: bytes,
                content: [(0..<promptBytes.count, 0), (promptBytes.count..<bytes.count, 1)],
                hasSpecialText: chat.containsSpecialText(bytes))
            var tokens = chat.tokenize(text)
            var mask = completionMask(tokens, completionStart: promptBytes.count)
            if config.appendsEOS, let eos = chat.tokenizer.eosTokenID {
                tokens.ids.append(Int32(eos))
                mask.append(true)
            }
            return (EncodedExample(ids: tokens.ids, lossMask: mask), text.hasSpecialText)

        case .conversationalPromptCompletion(let prompt, let completion):
            let promptText = try chat.render(prompt, addGenerationPrompt: true)
            let text = try chat.render(prompt + completion, addGenerationPrompt: false)
            guard text.bytes.starts(with: promptText.bytes) else {
                throw RecordError(
                    field: "prompt",
                    problem: .templateFailed(
                        message: "the rendered prompt (with generation prompt) is not a prefix of "
                            + "the rendered prompt + completion"))
            }
            let tokens = chat.tokenize(text)
            return (
                EncodedExample(
                    ids: tokens.ids,
                    lossMask: completionMask(tokens, completionStart: promptText.bytes.count)),
                text.hasSpecialText
            )
        }
    }

    /// True for tokens after `completionStart` (or all, for `.allTokens`).
    private func completionMask(_ tokens: TokenizedText, completionStart: Int) -> [Bool] {
        if config.loss == .allTokens { return Array(repeating: true, count: tokens.ids.count) }
        return tokens.ends.map { $0 > completionStart }
    }

    /// True for tokens overlapping assistant content, and for the first special token after each
    /// assistant message (its end-of-turn token, e.g. `<|im_end|>`) before the next assistant
    /// content.
    private func assistantMask(_ tokens: TokenizedText, text: SegmentedText, messages: [Message])
        -> [Bool]
    {
        var mask = [Bool](repeating: false, count: tokens.ids.count)
        let spans = text.content.filter { messages[$0.message].role == .assistant }.map(\.range)
        var token = 0
        for (index, span) in spans.enumerated() {
            while token < tokens.ids.count && tokens.ends[token] <= span.lowerBound {
                token += 1
            }
            while token < tokens.ids.count && tokens.starts[token] < span.upperBound {
                mask[token] = true
                token += 1
            }
            let limit = index + 1 < spans.count ? spans[index + 1].lowerBound : text.bytes.count
            var probe = token
            while probe < tokens.ids.count && tokens.starts[probe] < limit {
                if chat.tokenizer.isSpecial(Int(tokens.ids[probe])) {
                    mask[probe] = true
                    break
                }
                probe += 1
            }
        }
        return mask
    }
}

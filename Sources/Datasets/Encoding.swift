// Types shared by the encoders: configs, encoded examples and the report that counts every
// truncated or dropped example (nothing is cut or dropped silently).

/// Which tokens of an SFT example are trained on.
public enum LossScope: String, Sendable, Codable, CaseIterable {
    /// Conversations: assistant content plus the end-of-turn token that closes each assistant
    /// message, so the model learns to stop. Prompt-completion records: the completion (TRL's
    /// `completion_only_loss`), with EOS for plain-text records.
    case completionOnly
    /// Every token, template markup and prompts included.
    case allTokens
}

/// Settings of `SFTEncoder`. Defaults live on these properties and nowhere else.
public struct SFTEncodingConfig: Sendable, Equatable, Codable {
    /// Examples longer than this many tokens are cut at the end (the beginning is kept).
    public var maxLength = 512
    /// Which tokens are trained on.
    public var loss = LossScope.completionOnly
    /// Append EOS after plain-text completions (TRL does), so the model learns to stop.
    public var appendsEOS = true
    /// Whole-text tokenization unless content holds special-token text, or always piecewise.
    public var contentTokenization = ContentTokenization.automatic

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxLength, loss, appendsEOS, contentTokenization
    }

    /// Decodes a partial JSON object over the defaults; unknown keys are an error.
    public init(from decoder: any Decoder) throws {
        self.init()
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxLength = try c.decodeIfPresent(Int.self, forKey: .maxLength) ?? maxLength
        loss = try c.decodeIfPresent(LossScope.self, forKey: .loss) ?? loss
        appendsEOS = try c.decodeIfPresent(Bool.self, forKey: .appendsEOS) ?? appendsEOS
        contentTokenization =
            try c.decodeIfPresent(ContentTokenization.self, forKey: .contentTokenization)
            ?? contentTokenization
        try validate()
    }

    public func validate() throws(DatasetConfigError) {
        guard maxLength > 0 else {
            throw DatasetConfigError(field: "maxLength", value: "\(maxLength)", expected: "> 0")
        }
    }
}

/// One tokenized training example.
///
/// `lossMask[i]` says whether token `i` is a training target. It is **not** shifted: a trainer
/// predicting token `i` from position `i - 1` uses `lossMask[i]` for that prediction (as HF labels
/// with -100 work before the model's internal shift).
public struct EncodedExample: Sendable, Equatable, Codable {
    public var ids: [Int32]
    public var lossMask: [Bool]
    /// The record's line in its file (0 when encoded outside a dataset).
    public var sourceLine: Int
    /// Whether tokens past `maxLength` were cut.
    public var isTruncated: Bool

    public init(ids: [Int32], lossMask: [Bool], sourceLine: Int = 0, isTruncated: Bool = false) {
        precondition(ids.count == lossMask.count, "ids \(ids.count) vs mask \(lossMask.count)")
        self.ids = ids
        self.lossMask = lossMask
        self.sourceLine = sourceLine
        self.isTruncated = isTruncated
    }

    /// Tokens with `lossMask` set.
    public var trainedTokenCount: Int { lossMask.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// HF-style labels: the id where trained, `ignoreIndex` elsewhere; not shifted.
    public func labels(ignoreIndex: Int32 = -100) -> [Int32] {
        zip(ids, lossMask).map { $1 ? $0 : ignoreIndex }
    }

    /// Keeps the first `maxLength` tokens.
    func truncated(to maxLength: Int) -> EncodedExample {
        guard ids.count > maxLength else { return self }
        return EncodedExample(
            ids: Array(ids.prefix(maxLength)), lossMask: Array(lossMask.prefix(maxLength)),
            sourceLine: sourceLine, isTruncated: true)
    }
}

/// What an encoder did with a dataset: how many examples were kept, cut or dropped, and where.
public struct EncodingReport: Sendable, Equatable, Codable, CustomStringConvertible {
    public var file: String
    /// Examples returned.
    public var examples = 0
    /// Examples cut to the length limit (still returned).
    public var truncated = 0
    /// Lines of the truncated examples.
    public var truncatedLines: [Int] = []
    /// Examples not returned: SFT examples with no trained token left after truncation,
    /// preference pairs with no room for a completion or identical sides after truncation.
    public var dropped = 0
    /// Lines of the dropped examples.
    public var droppedLines: [Int] = []
    /// Preference pairs (or rankings) skipped because two of their completions are the same tokens: no preference
    /// to learn.
    public var identical = 0
    /// Lines of the identical pairs.
    public var identicalLines: [Int] = []
    /// Longest example before truncation, in tokens.
    public var longest = 0
    /// Tokens in the returned examples (SFT: all; preference: prompt + chosen + rejected).
    public var tokens = 0
    /// Trained tokens in the returned SFT examples.
    public var trainedTokens = 0
    /// Examples tokenized piece by piece because message content held special-token text.
    public var segmented = 0

    public init(file: String) { self.file = file }

    public var description: String {
        var text = "\(file): \(examples) examples, \(tokens) tokens"
        if trainedTokens > 0 { text += " (\(trainedTokens) trained)" }
        text += ", longest \(longest); \(truncated) truncated"
        if !truncatedLines.isEmpty { text += " (lines \(Self.list(truncatedLines)))" }
        text += ", \(dropped) dropped"
        if !droppedLines.isEmpty { text += " (lines \(Self.list(droppedLines)))" }
        if identical > 0 {
            text += ", \(identical) skipped with identical chosen and rejected (lines \(Self.list(identicalLines)))"
        }
        if segmented > 0 { text += ", \(segmented) with special-token text in content" }
        return text
    }

    private static func list(_ lines: [Int]) -> String {
        let shown = lines.prefix(10).map(String.init).joined(separator: ", ")
        return lines.count > 10 ? shown + ", …" : shown
    }
}

/// An encoded SFT dataset.
public struct EncodedDataset: Sendable {
    public var examples: [EncodedExample]
    public var report: EncodingReport
}

// A batch of token rows padded to one length, with each row's real tokens known (row lengths and the
// side padding is on), plus the next-token targets a loss reads (−100 = not scored, as in PyTorch).

/// One batch of token rows, right- or left-padded to a common length T.
public struct TokenBatch: Sendable {
    public let batchSize: Int
    public let length: Int
    /// [B·T] token ids (pad positions hold any valid id).
    public let tokens: [Int32]
    /// [B·T] RoPE positions (0-based within each row's real tokens).
    public let positions: [Int32]
    /// [B·T] additive key mask (0 = attend, −∞ = padding), nil when no row is padded.
    public let keyMask: [Float]?
    /// Real (non-pad) tokens of each row.
    public let rowLengths: [Int]
    /// Padding sits before the real tokens (generation) rather than after them (training).
    public let isLeftPadded: Bool

    /// Rows given as flat ids; each row's real tokens are those the key mask does not hide (all of them
    /// without a mask).
    public init(batchSize: Int, length: Int, tokens: [Int32], positions: [Int32]? = nil, keyMask: [Float]? = nil) {
        precondition(tokens.count == batchSize * length, "tokens \(tokens.count) vs \(batchSize)×\(length)")
        self.batchSize = batchSize
        self.length = length
        self.tokens = tokens
        self.positions = positions ?? (0..<batchSize).flatMap { _ in (0..<length).map(Int32.init) }
        self.keyMask = keyMask
        rowLengths = (0..<batchSize).map { b in
            keyMask.map { m in (0..<length).filter { m[b * length + $0] == 0 }.count } ?? length
        }
        isLeftPadded = keyMask.map { m in (0..<batchSize).contains { m[$0 * length] != 0 } } ?? false
    }

    /// Pads ragged rows to the longest with `padID`; `leftPadding` right-aligns them (for generation).
    public init(rows: [[Int32]], padID: Int32, leftPadding: Bool = false) {
        let t = rows.map(\.count).max() ?? 0
        var tokens: [Int32] = [], positions: [Int32] = [], mask: [Float] = []
        for r in rows {
            let pad = t - r.count
            let padTokens = [Int32](repeating: padID, count: pad), padMask = [Float](repeating: -.infinity, count: pad)
            let real = (0..<r.count).map(Int32.init)
            tokens += leftPadding ? padTokens + r : r + padTokens
            positions +=
                leftPadding ? [Int32](repeating: 0, count: pad) + real : real + [Int32](repeating: 0, count: pad)
            mask +=
                leftPadding
                ? padMask + [Float](repeating: 0, count: r.count) : [Float](repeating: 0, count: r.count) + padMask
        }
        let padded = rows.contains { $0.count != t }
        batchSize = rows.count
        length = t
        self.tokens = tokens
        self.positions = positions
        keyMask = padded ? mask : nil
        rowLengths = rows.map(\.count)
        isLeftPadded = leftPadding && padded
    }

    public var tokenCount: Int { batchSize * length }

    /// Flat indices (into the B·T tokens) of row `b`'s real tokens.
    public func realTokens(row b: Int) -> Range<Int> {
        let start = b * length + (isLeftPadded ? length - rowLengths[b] : 0)
        return start..<(start + rowLengths[b])
    }

    /// Flat index of row `b`'s last real token (where a sequence-level head reads).
    public func lastRealToken(row b: Int) -> Int { realTokens(row: b).upperBound - 1 }

    /// Longest row.
    public var longestRow: Int { rowLengths.max() ?? 0 }
}

/// A right-padded batch with next-token targets: target[b·T + t] is the token at t + 1 when that token
/// is scored, −100 otherwise (prompt, padding, the last position).
public struct LabeledBatch: Sendable {
    public let batch: TokenBatch
    public let targets: [Int32]
    /// Scored tokens.
    public let counted: Int
    /// Real (non-pad) tokens.
    public let realTokens: Int

    /// Rows with a per-token loss mask (`lossMask[r][t]`: token t of row r is scored), right-padded
    /// (training) or left-padded.
    public init(rows: [[Int32]], lossMask: [[Bool]], padID: Int32, leftPadding: Bool = false) {
        precondition(
            rows.count == lossMask.count && zip(rows, lossMask).allSatisfy { $0.count == $1.count },
            "one loss-mask entry per token")
        let batch = TokenBatch(rows: rows, padID: padID, leftPadding: leftPadding)
        var targets = [Int32](repeating: -100, count: batch.tokenCount)
        var counted = 0
        for (r, row) in rows.enumerated() {
            let start = batch.realTokens(row: r).lowerBound
            for t in 0..<max(0, row.count - 1) where lossMask[r][t + 1] {
                targets[start + t] = row[t + 1]
                counted += 1
            }
        }
        self.batch = batch
        self.targets = targets
        self.counted = counted
        realTokens = rows.reduce(0) { $0 + $1.count }
    }

    /// Prompt + completion rows scoring the completion tokens only.
    public init(prompts: [[Int32]], completions: [[Int32]], padID: Int32, leftPadding: Bool = false) {
        precondition(prompts.count == completions.count, "one completion per prompt")
        let rows = zip(prompts, completions).map { $0 + $1 }
        let masks = zip(prompts, completions).map {
            [Bool](repeating: false, count: $0.count) + [Bool](repeating: true, count: $1.count)
        }
        self.init(rows: rows, lossMask: masks, padID: padID, leftPadding: leftPadding)
    }
}

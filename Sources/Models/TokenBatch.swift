// A batch of token rows padded to one length, with each row's real tokens known (row lengths and the
// side padding is on), plus the next-token targets a loss reads (−100 = not scored, as in PyTorch).
// Rows that begin with the same tokens (the k completions of one prompt in GRPO/RLOO, chosen and rejected in
// DPO, a reward model's pair) can share that prefix: it is computed once, as a row of its own, and each row's
// remaining tokens attend to it (prefix sharing, Wang et al. 2024, "Accelerating Direct Preference Optimization
// with Prefix Sharing", §3). The flat token order is then every prefix row, then every row's own tokens.

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
    /// Shared prefixes the rows continue (nil: each row holds all its tokens). With them, `tokens`,
    /// `positions`, `keyMask` and `rowLengths` describe each row's own tokens, which follow the prefix tokens in
    /// the flat order (`prefixTokenCount` of them first).
    public let prefixes: SharedPrefixes?

    /// Right-padded prefix rows, each the beginning of one or more rows of the batch.
    public struct SharedPrefixes: Sendable {
        /// Prefix rows G and their padded length Tp.
        public let count: Int
        public let length: Int
        /// [G·Tp] ids, RoPE positions and additive key mask (0 = real, −∞ = padding) of the prefix rows.
        public let tokens: [Int32]
        public let positions: [Int32]
        public let keyMask: [Float]
        /// Real tokens of each prefix row.
        public let lengths: [Int]
        /// The prefix row each batch row continues.
        public let ofRow: [Int]
    }

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
        prefixes = nil
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
        prefixes = nil
    }

    /// Right-padded rows whose first `shareable[r]` tokens may be shared: rows with the same such tokens continue
    /// one prefix row. Each row keeps at least its last token as its own. The shared layout is used only when it
    /// holds fewer tokens than plain padding (else this is `init(rows:padID:)`).
    public init(rows: [[Int32]], shareable: [Int], padID: Int32) {
        precondition(rows.count == shareable.count, "one shareable length per row")
        let cut = zip(rows, shareable).map { min($1, $0.count - 1) }
        var index: [ArraySlice<Int32>: Int] = [:], keys: [ArraySlice<Int32>] = [], ofRow: [Int] = []
        for (r, p) in zip(rows, cut) {
            let key = r[0..<max(0, p)]
            if let g = index[key] {
                ofRow.append(g)
            } else {
                index[key] = keys.count
                ofRow.append(keys.count)
                keys.append(key)
            }
        }
        let tp = keys.map(\.count).max() ?? 0, own = zip(rows, cut).map { Array($0[max(0, $1)...]) }
        let ts = own.map(\.count).max() ?? 0, plain = rows.count * (rows.map(\.count).max() ?? 0)
        guard keys.count < rows.count, !cut.contains(where: { $0 < 1 }), keys.count * tp + rows.count * ts < plain
        else {
            self = TokenBatch(rows: rows, padID: padID)
            return
        }
        var tokens: [Int32] = [], positions: [Int32] = [], mask: [Float] = []
        for key in keys {
            let pad = tp - key.count
            tokens += Array(key) + [Int32](repeating: padID, count: pad)
            positions += (0..<key.count).map(Int32.init) + [Int32](repeating: 0, count: pad)
            mask += [Float](repeating: 0, count: key.count) + [Float](repeating: -.infinity, count: pad)
        }
        let shared = SharedPrefixes(
            count: keys.count, length: tp, tokens: tokens, positions: positions, keyMask: mask,
            lengths: keys.map(\.count), ofRow: ofRow)
        tokens = []
        positions = []
        mask = []
        for (r, p) in zip(own, cut) {
            let pad = ts - r.count
            tokens += r + [Int32](repeating: padID, count: pad)
            positions += (0..<r.count).map { Int32(p + $0) } + [Int32](repeating: 0, count: pad)
            mask += [Float](repeating: 0, count: r.count) + [Float](repeating: -.infinity, count: pad)
        }
        batchSize = rows.count
        length = ts
        self.tokens = tokens
        self.positions = positions
        keyMask = own.contains { $0.count != ts } ? mask : nil
        rowLengths = own.map(\.count)
        isLeftPadded = false
        prefixes = shared
    }

    /// Tokens the forward runs over: the prefix rows' and the rows' own (padding included).
    public var tokenCount: Int { prefixTokenCount + batchSize * length }

    /// Flat positions taken by the shared prefix rows (before the rows' own tokens); 0 without prefixes.
    public var prefixTokenCount: Int { prefixes.map { $0.count * $0.length } ?? 0 }

    /// Flat indices of row `b`'s own real tokens (all its tokens without shared prefixes).
    public func realTokens(row b: Int) -> Range<Int> {
        let start = prefixTokenCount + b * length + (isLeftPadded ? length - rowLengths[b] : 0)
        return start..<(start + rowLengths[b])
    }

    /// Flat indices of row `b`'s own positions, padding included.
    public func paddedRow(_ b: Int) -> Range<Int> {
        let start = prefixTokenCount + b * length
        return start..<(start + length)
    }

    /// Real tokens of row b, shared prefix included.
    public func fullLength(row b: Int) -> Int { rowLengths[b] + (prefixes.map { $0.lengths[$0.ofRow[b]] } ?? 0) }

    /// Flat index of row `b`'s last real token (where a sequence-level head reads).
    public func lastRealToken(row b: Int) -> Int { realTokens(row: b).upperBound - 1 }

    /// Longest row, shared prefix included.
    public var longestRow: Int { (0..<batchSize).map(fullLength(row:)).max() ?? 0 }

    /// Real tokens of the rows, a shared prefix counted in every row that continues it.
    public var rowTokens: Int { (0..<batchSize).reduce(0) { $0 + fullLength(row: $1) } }
}

/// A right-padded batch with next-token targets: target[b·T + t] is the token at t + 1 when that token
/// is scored, −100 otherwise (prompt, padding, the last position).
public struct LabeledBatch: Sendable {
    public let batch: TokenBatch
    public let targets: [Int32]
    /// Scored tokens.
    public let counted: Int
    /// Real (non-pad) tokens of the rows (a shared prefix counted in every row that continues it).
    public let realTokens: Int

    /// Rows with a per-token loss mask (`lossMask[r][t]`: token t of row r is scored), right-padded
    /// (training) or left-padded. `shareable[r]`: how many leading tokens of row r may be shared with rows that
    /// begin the same way (`TokenBatch(rows:shareable:padID:)`; cut to stop before the first scored token's
    /// predecessor, since a shared position cannot predict a different token per row).
    public init(
        rows: [[Int32]], lossMask: [[Bool]], padID: Int32, leftPadding: Bool = false, shareable: [Int]? = nil
    ) {
        precondition(
            rows.count == lossMask.count && zip(rows, lossMask).allSatisfy { $0.count == $1.count },
            "one loss-mask entry per token")
        precondition(!leftPadding || shareable == nil, "shared prefixes are right-padded")
        let batch =
            shareable.map { share in
                TokenBatch(
                    rows: rows,
                    shareable: zip(share, lossMask).map { min($0, ($1.firstIndex(of: true) ?? $1.count) - 1) },
                    padID: padID)
            } ?? TokenBatch(rows: rows, padID: padID, leftPadding: leftPadding)
        var targets = [Int32](repeating: -100, count: batch.tokenCount)
        var counted = 0
        for (r, row) in rows.enumerated() {
            let start = batch.realTokens(row: r).lowerBound, skip = row.count - batch.rowLengths[r]
            for t in 0..<max(0, batch.rowLengths[r] - 1) where lossMask[r][skip + t + 1] {
                targets[start + t] = row[skip + t + 1]
                counted += 1
            }
        }
        self.batch = batch
        self.targets = targets
        self.counted = counted
        realTokens = rows.reduce(0) { $0 + $1.count }
    }

    /// Prompt + completion rows scoring the completion tokens only. Right-padded rows with the same prompt share
    /// it (all but its last token, whose position predicts the first completion token).
    public init(prompts: [[Int32]], completions: [[Int32]], padID: Int32, leftPadding: Bool = false) {
        precondition(prompts.count == completions.count, "one completion per prompt")
        let rows = zip(prompts, completions).map { $0 + $1 }
        let masks = zip(prompts, completions).map {
            [Bool](repeating: false, count: $0.count) + [Bool](repeating: true, count: $1.count)
        }
        self.init(
            rows: rows, lossMask: masks, padID: padID, leftPadding: leftPadding,
            shareable: leftPadding ? nil : prompts.map(\.count))
    }
}

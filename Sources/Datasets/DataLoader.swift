// Batches of encoded examples: a seeded shuffle per epoch, optional packing of several examples
// into one row (TRL's `packing`), and a position (epoch, batch, seed) that can be saved with a
// checkpoint so a resumed run sees exactly the batches it would have seen.

/// How examples are laid out in rows.
public enum PackingStrategy: String, Sendable, Codable, CaseIterable {
    /// One example per row.
    case none
    /// Examples in epoch order concatenated and cut into rows of exactly `packedLength` tokens
    /// (the epoch's last row may be shorter); examples may span two rows.
    case wrapped
    /// Whole examples placed in order into rows of at most `packedLength` tokens, a new row when
    /// the next one does not fit (an example longer than a row is split).
    case wholeExamples
}

/// Settings of `DataLoader`. Defaults live on these properties and nowhere else.
public struct DataLoaderConfig: Sendable, Equatable, Codable {
    /// Rows per batch.
    public var batchSize = 8
    /// Seed of the per-epoch shuffles.
    public var seed: UInt64 = 0
    /// Shuffle the examples each epoch (off for evaluation).
    public var shuffles = true
    public var packing = PackingStrategy.none
    /// Row length for packing.
    public var packedLength = 512
    /// Leave out an epoch's last batch when it has fewer than `batchSize` rows.
    public var dropsLastBatch = false
    /// Batch examples of similar length (less padding; TRL's `group_by_length`): within windows of
    /// 64 batches of the shuffled order, sort by length, cut into batches, then shuffle the batches.
    /// Only without packing.
    public var groupsByLength = false

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case batchSize, seed, shuffles, packing, packedLength, dropsLastBatch, groupsByLength
    }

    /// Decodes a partial JSON object over the defaults; unknown keys are an error.
    public init(from decoder: any Decoder) throws {
        self.init()
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        shuffles = try c.decodeIfPresent(Bool.self, forKey: .shuffles) ?? shuffles
        packing = try c.decodeIfPresent(PackingStrategy.self, forKey: .packing) ?? packing
        packedLength = try c.decodeIfPresent(Int.self, forKey: .packedLength) ?? packedLength
        dropsLastBatch = try c.decodeIfPresent(Bool.self, forKey: .dropsLastBatch) ?? dropsLastBatch
        groupsByLength = try c.decodeIfPresent(Bool.self, forKey: .groupsByLength) ?? groupsByLength
        try validate()
    }

    public func validate() throws(DatasetConfigError) {
        guard batchSize > 0 else {
            throw DatasetConfigError(field: "batchSize", value: "\(batchSize)", expected: "> 0")
        }
        guard packedLength > 0 else {
            throw DatasetConfigError(
                field: "packedLength", value: "\(packedLength)", expected: "> 0")
        }
    }
}

/// Where a data loader is: the next batch it will return. Save it with a checkpoint.
public struct DataLoaderPosition: Sendable, Hashable, Codable {
    public var epoch: Int
    /// Index of the next batch within the epoch.
    public var batch: Int
    /// The loader's seed, checked on resume.
    public var seed: UInt64

    public init(epoch: Int = 0, batch: Int = 0, seed: UInt64) {
        self.epoch = epoch
        self.batch = batch
        self.seed = seed
    }
}

/// Tokens `tokenRange` of example `example` (an index into the loader's examples).
public struct RowSegment: Sendable, Hashable, Codable {
    public var example: Int
    public var tokenRange: Range<Int>
}

/// One batch. Rows are not padded (see `padded(with:)`); `lossMask` is not shifted (see
/// `EncodedExample`).
public struct Batch: Sendable, Equatable {
    /// Token rows, [B][T_b].
    public var tokens: [[Int32]]
    /// Training-target flags, same shape as `tokens`.
    public var lossMask: [[Bool]]
    /// Which example pieces make up each row, in order: with packing, a model that must not
    /// attend across examples resets positions and attention at each segment.
    public var segments: [[RowSegment]]
    /// The position this batch was taken from.
    public var position: DataLoaderPosition

    public var tokenCount: Int { tokens.reduce(0) { $0 + $1.count } }
    public var trainedTokenCount: Int {
        lossMask.reduce(0) { total, row in total + row.reduce(0) { $0 + ($1 ? 1 : 0) } }
    }

    /// HF-style labels: the id where trained, `ignoreIndex` elsewhere; not shifted.
    public func labels(ignoreIndex: Int32 = -100) -> [[Int32]] {
        zip(tokens, lossMask).map { row, mask in zip(row, mask).map { $1 ? $0 : ignoreIndex } }
    }

    /// Rows padded to the longest with `padID` (mask false on padding).
    public func padded(with padID: Int32) -> (tokens: [[Int32]], lossMask: [[Bool]]) {
        let width = tokens.map(\.count).max() ?? 0
        return (
            tokens.map { $0 + Array(repeating: padID, count: width - $0.count) },
            lossMask.map { $0 + Array(repeating: false, count: width - $0.count) }
        )
    }
}

/// Serves batches of encoded examples, epoch after epoch, reproducibly from a seed.
///
/// ```swift
/// var loader = try DataLoader(examples: encoded.examples, config: config)
/// let batch = loader.next()                  // advances loader.position
/// // later: try DataLoader(examples: …, config: config, position: savedPosition)
/// ```
public struct DataLoader: Sendable {
    public let examples: [EncodedExample]
    public let config: DataLoaderConfig
    /// The next batch to return.
    public private(set) var position: DataLoaderPosition
    /// Rows of the current epoch.
    private var rows: [[RowSegment]]

    /// - Parameter position: Where to resume; nil starts at epoch 0, batch 0.
    /// - Throws: `DatasetConfigError` for an invalid config, no examples, or a position from
    ///   another seed or past its epoch's end.
    public init(
        examples: [EncodedExample], config: DataLoaderConfig = DataLoaderConfig(),
        position: DataLoaderPosition? = nil
    ) throws(DatasetConfigError) {
        try config.validate()
        guard !examples.isEmpty else {
            throw DatasetConfigError(field: "examples", value: "0", expected: "at least one")
        }
        let position = position ?? DataLoaderPosition(seed: config.seed)
        guard position.epoch >= 0 && position.batch >= 0 else {
            throw DatasetConfigError(
                field: "position", value: "epoch \(position.epoch), batch \(position.batch)",
                expected: "a non-negative epoch and batch")
        }
        guard position.seed == config.seed else {
            throw DatasetConfigError(
                field: "position.seed", value: "\(position.seed)",
                expected: "the loader's seed \(config.seed)")
        }
        self.examples = examples
        self.config = config
        self.position = position
        rows = []
        rows = layout(epoch: position.epoch)
        if batchesInEpoch == 0 {
            throw DatasetConfigError(
                field: "batchSize", value: "\(config.batchSize)",
                expected: "at most the \(rows.count) rows of an epoch when dropsLastBatch is set")
        }
        guard position.batch < batchesInEpoch else {
            throw DatasetConfigError(
                field: "position.batch", value: "\(position.batch)",
                expected: "below the \(batchesInEpoch) batches of epoch \(position.epoch)")
        }
    }

    /// Batches in the current epoch.
    public var batchesInEpoch: Int {
        config.dropsLastBatch
            ? rows.count / config.batchSize
            : (rows.count + config.batchSize - 1) / config.batchSize
    }

    /// Returns the batch at `position` and moves to the next (into the next epoch at the end).
    public mutating func next() -> Batch {
        let start = position.batch * config.batchSize
        let batchRows = rows[start..<min(start + config.batchSize, rows.count)]
        let batch = Batch(
            tokens: batchRows.map { $0.flatMap { examples[$0.example].ids[$0.tokenRange] } },
            lossMask: batchRows.map { $0.flatMap { examples[$0.example].lossMask[$0.tokenRange] } },
            segments: Array(batchRows), position: position)
        position.batch += 1
        if position.batch >= batchesInEpoch {
            position.epoch += 1
            position.batch = 0
            rows = layout(epoch: position.epoch)
        }
        return batch
    }

    /// Example order of an epoch: a seeded permutation, or file order without shuffling.
    public func order(epoch: Int) -> [Int] {
        guard config.shuffles else { return Array(examples.indices) }
        var random = SplitMix64(seed: config.seed, stream: UInt64(epoch))
        return random.permutation(of: examples.count)
    }

    /// The rows of an epoch.
    /// `order` regrouped so each batch holds examples of similar length; deterministic per (seed, epoch).
    private func groupedByLength(_ order: [Int], epoch: Int) -> [Int] {
        let window = config.batchSize * 64
        var batches: [[Int]] = []
        var start = 0
        while start < order.count {
            let chunk = order[start..<min(start + window, order.count)]
                .sorted { (examples[$0].ids.count, $0) > (examples[$1].ids.count, $1) }
            var i = 0
            while i < chunk.count {
                batches.append(Array(chunk[i..<min(i + config.batchSize, chunk.count)]))
                i += config.batchSize
            }
            start += window
        }
        guard config.shuffles else { return batches.flatMap { $0 } }
        // Keep short final batches last so only the epoch's final batch can be short.
        let full = batches.filter { $0.count == config.batchSize },
            short = batches.filter { $0.count != config.batchSize }
        var random = SplitMix64(seed: config.seed, stream: 0x4C45_4E47 &+ UInt64(epoch))  // "LENG"
        return random.permutation(of: full.count).flatMap { full[$0] } + short.flatMap { $0 }
    }

    private func layout(epoch: Int) -> [[RowSegment]] {
        let order = order(epoch: epoch)
        let length = config.packedLength
        switch config.packing {
        case .none:
            let grouped = config.groupsByLength ? groupedByLength(order, epoch: epoch) : order
            return grouped.map { [RowSegment(example: $0, tokenRange: 0..<examples[$0].ids.count)] }
        case .wrapped:
            var rows: [[RowSegment]] = []
            var row: [RowSegment] = []
            var filled = 0
            for index in order {
                var start = 0
                let count = examples[index].ids.count
                while start < count {
                    let take = min(length - filled, count - start)
                    row.append(RowSegment(example: index, tokenRange: start..<start + take))
                    start += take
                    filled += take
                    if filled == length {
                        rows.append(row)
                        row = []
                        filled = 0
                    }
                }
            }
            if !row.isEmpty { rows.append(row) }
            return rows
        case .wholeExamples:
            var rows: [[RowSegment]] = []
            var row: [RowSegment] = []
            var filled = 0
            for index in order {
                let count = examples[index].ids.count
                if filled + count > length && !row.isEmpty {
                    rows.append(row)
                    row = []
                    filled = 0
                }
                var start = 0
                while count - start > length {  // longer than a row: split
                    rows.append([RowSegment(example: index, tokenRange: start..<start + length)])
                    start += length
                }
                if start < count {
                    row.append(RowSegment(example: index, tokenRange: start..<count))
                    filled += count - start
                }
            }
            if !row.isEmpty { rows.append(row) }
            return rows
        }
    }
}

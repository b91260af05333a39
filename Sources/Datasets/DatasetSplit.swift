// Seeded randomness for data handling, independent of the Swift standard library's generators
// and of TensorCore: SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
// generators", OOPSLA 2014), Lemire's unbiased bounded integers, and Fisher-Yates shuffles, so a
// seed gives the same order on every platform and toolchain. Also the train / eval split and the
// pilot-run data fraction.

/// SplitMix64: a tiny, fast, statistically solid 64-bit generator; the state is the seed.
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable, Codable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for one purpose (`stream`) of a seed, e.g. epoch 3 of seed 42, so streams
    /// of nearby seeds or epochs are unrelated.
    public init(seed: UInt64, stream: UInt64) {
        var mixer = SplitMix64(seed: seed ^ 0x6A09_E667_F3BC_C909)
        state = mixer.next() ^ (stream &* 0x9E37_79B9_7F4A_7C15)
        _ = next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<bound without modulo bias (Lemire 2019).
    public mutating func uniform(below bound: Int) -> Int {
        precondition(bound > 0, "bound \(bound) must be positive")
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold { product = next().multipliedFullWidth(by: range) }
        }
        return Int(product.high)
    }

    /// A seeded permutation of 0..<count (Fisher-Yates). O(count).
    public mutating func permutation(of count: Int) -> [Int] {
        var order = Array(0..<count)
        var index = count - 1
        while index > 0 {
            order.swapAt(index, uniform(below: index + 1))
            index -= 1
        }
        return order
    }
}

/// How records are divided into training and held-out evaluation data.
public struct SplitConfig: Sendable, Equatable, Codable {
    /// Share of records held out for evaluation (0 for none); exclusive with `evalCount`.
    public var evalFraction = 0.0
    /// Number of records held out for evaluation (0 for none); exclusive with `evalFraction`.
    public var evalCount = 0
    /// Share (0 < f ≤ 1) of the remaining records used for training; pilot runs use 0.05-0.1.
    public var dataFraction = 1.0
    public var seed: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case evalFraction, evalCount, dataFraction, seed
    }

    /// Decodes a partial JSON object over the defaults; unknown keys are an error.
    public init(from decoder: any Decoder) throws {
        self.init()
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        evalFraction = try c.decodeIfPresent(Double.self, forKey: .evalFraction) ?? evalFraction
        evalCount = try c.decodeIfPresent(Int.self, forKey: .evalCount) ?? evalCount
        dataFraction = try c.decodeIfPresent(Double.self, forKey: .dataFraction) ?? dataFraction
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        try validate()
    }

    public func validate() throws(DatasetConfigError) {
        guard evalFraction >= 0 && evalFraction < 1 else {
            throw DatasetConfigError(
                field: "evalFraction", value: "\(evalFraction)", expected: "0 ≤ f < 1")
        }
        guard evalCount >= 0 else {
            throw DatasetConfigError(field: "evalCount", value: "\(evalCount)", expected: "≥ 0")
        }
        guard evalFraction == 0 || evalCount == 0 else {
            throw DatasetConfigError(
                field: "evalCount", value: "\(evalCount)",
                expected: "0 when evalFraction (\(evalFraction)) is set; give one of the two")
        }
        guard dataFraction > 0 && dataFraction <= 1 else {
            throw DatasetConfigError(
                field: "dataFraction", value: "\(dataFraction)", expected: "0 < f ≤ 1")
        }
    }
}

/// Disjoint, seeded index sets into a dataset's records.
///
/// The eval set is drawn first, from all records, so it does not change with `dataFraction`;
/// training records are the next `dataFraction` share of the same permutation, so a smaller
/// fraction's training set is a subset of a larger one's (same seed).
public struct DatasetSplit: Sendable, Equatable, Codable {
    /// Training record indices, in file order.
    public var train: [Int]
    /// Evaluation record indices, in file order.
    public var eval: [Int]

    /// - Throws: `DatasetConfigError` for an invalid config, or one that leaves no training record.
    public init(count: Int, config: SplitConfig) throws(DatasetConfigError) {
        try config.validate()
        var evalSize = config.evalCount
        if config.evalFraction > 0 {
            evalSize = max(1, Int((config.evalFraction * Double(count)).rounded()))
        }
        guard evalSize < count else {
            throw DatasetConfigError(
                field: config.evalFraction > 0 ? "evalFraction" : "evalCount",
                value: config.evalFraction > 0 ? "\(config.evalFraction)" : "\(evalSize)",
                expected: "fewer held-out records than the \(count) in the dataset")
        }
        var random = SplitMix64(seed: config.seed, stream: 0x5350_4C49_54)  // "SPLIT"
        let order = random.permutation(of: count)
        let rest = count - evalSize
        let trainSize = max(1, Int((config.dataFraction * Double(rest)).rounded()))
        eval = order[..<evalSize].sorted()
        train = order[evalSize..<evalSize + trainSize].sorted()
    }
}

extension Dataset {
    /// The training and evaluation records of a seeded split (eval is empty when none is held
    /// out). Both keep this file's read report.
    public func split(_ config: SplitConfig) throws(DatasetConfigError)
        -> (train: Dataset, eval: Dataset)
    {
        let split = try DatasetSplit(count: count, config: config)
        return (subset(split.train), subset(split.eval))
    }
}

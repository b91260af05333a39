// Seeded shuffled batches over the indices of a list of examples (preference pairs, prompts): one
// permutation per epoch, drawn from (seed, epoch) alone, so a checkpoint's position resumes the stream
// exactly. A short last batch is kept.

import Datasets
import TensorCore

public struct IndexBatches: Sendable {
    public let count: Int
    public let batchSize: Int
    public let seed: UInt64
    public private(set) var position: DataLoaderPosition
    private var order: [Int]

    public init(count: Int, batchSize: Int, seed: UInt64, position: DataLoaderPosition? = nil) {
        precondition(count > 0 && batchSize > 0, "batches of at least one of at least one example")
        self.count = count
        self.batchSize = batchSize
        self.seed = seed
        self.position = position ?? DataLoaderPosition(seed: seed)
        order = Self.permutation(count: count, seed: seed, epoch: self.position.epoch)
    }

    public var batchesInEpoch: Int { (count + batchSize - 1) / batchSize }

    /// The next batch of indices (then the position advances, wrapping into a new shuffled epoch).
    public mutating func next() -> [Int] {
        if position.batch >= batchesInEpoch {
            position = DataLoaderPosition(epoch: position.epoch + 1, batch: 0, seed: seed)
            order = Self.permutation(count: count, seed: seed, epoch: position.epoch)
        }
        let start = position.batch * batchSize
        position.batch += 1
        return Array(order[start..<min(count, start + batchSize)])
    }

    /// Fisher–Yates from an RNG seeded by (seed, epoch).
    static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var rng = RNG(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        var p = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) { p.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return p
    }
}

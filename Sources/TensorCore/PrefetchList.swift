// Memory that a later phase will read, handed to compute-bound product kernels so they prefetch it a few
// cache lines per block while they multiply (_CKernels `rk_prefetch_list`): batched decoding is
// compute-bound in its products and memory-bound in attention, which streams every row's KV cache each
// step; prefetching the next layer's cache during the MLP overlaps the two.

import _CKernels

public final class PrefetchList: @unchecked Sendable {
    private let capacity: Int
    private let starts: UnsafeMutablePointer<UnsafePointer<UInt8>?>
    private let ends: UnsafeMutablePointer<Int>
    /// The C view.
    let list: UnsafeMutablePointer<rk_prefetch_list>

    /// Room for `capacity` ranges.
    public init(capacity: Int) {
        self.capacity = max(capacity, 1)
        starts = .allocate(capacity: self.capacity)
        ends = .allocate(capacity: self.capacity)
        list = .allocate(capacity: 1)
        list.initialize(to: rk_prefetch_list(starts: nil, ends: nil, count: 0, per_step: 0))
    }

    deinit {
        starts.deallocate()
        ends.deallocate()
        list.deallocate()
    }

    /// Replaces the ranges (start, bytes), in the order they should be fetched; at most `capacity`.
    public func set(_ ranges: [(UnsafeRawPointer, Int)]) {
        set(count: ranges.count) { ranges[$0] }
    }

    /// Replaces the ranges with `range(i)` for i < count (at most `capacity`), without building an array.
    public func set(count: Int, _ range: (Int) -> (UnsafeRawPointer, Int)) {
        precondition(count <= capacity, "\(count) ranges > capacity \(capacity)")
        var lines = 0
        for i in 0..<count {
            let (start, bytes) = range(i)
            starts[i] = start.assumingMemoryBound(to: UInt8.self)
            lines += (bytes + 63) / 64
            ends[i] = lines
        }
        list.pointee = rk_prefetch_list(
            starts: UnsafePointer(starts), ends: UnsafePointer(ends), count: count, per_step: 0)
    }

    /// Cache lines listed.
    public var lineCount: Int { list.pointee.count == 0 ? 0 : ends[list.pointee.count - 1] }

    /// Spreads the lines over `steps` kernel steps.
    func spread(over steps: Int) {
        list.pointee.per_step = steps > 0 ? (lineCount + steps - 1) / steps : 0
    }
}

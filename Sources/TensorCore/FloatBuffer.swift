// Owned, 64-byte aligned Float32 storage and the Tensor view over it.
// Storage has reference semantics on purpose: activations and parameters are large and are never copied
// implicitly (a copy-on-write check in a hot loop costs a full copy; see swift-compute.md §2 ii).

#if os(Linux)
    import Glibc
#endif

/// A fixed-size, 64-byte aligned block of Float32 values. Zero-initialised.
public final class FloatBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Large buffers are anonymous memory maps (Linux): their pages read as zeros and take memory only once
    /// written, so a buffer sized for the largest batch (activations, KV caches, scratch) costs what the batches
    /// actually use. nil: allocated on the heap.
    private let mapping: (base: UnsafeMutableRawPointer, length: Int)?

    /// `hugePages`: ask for 2 MB pages (Linux `MADV_HUGEPAGE`) when the buffer spans at least one. For
    /// training state streamed every step (gradients, optimizer moments, activations, scratch): measured
    /// ~1.5 % on a full fine-tuning step. Not for weights read once at load: faulting huge pages in can
    /// stall on memory compaction (model load took 0.32 → 1.25 s on the project machine).
    public init(count: Int, hugePages: Bool = false) {
        precondition(count >= 0, "FloatBuffer count \(count) < 0")
        self.count = count
        let bytes = max(count, 1) * 4, huge = hugePages && bytes >= Self.hugePageBytes
        #if os(Linux)
            if bytes >= Self.mappedBytes,
                let (base, length, start) = Self.map(bytes, alignment: huge ? Self.hugePageBytes : 64)
            {
                if huge { _ = madvise(start, bytes, MADV_HUGEPAGE) }
                mapping = (base, length)
                pointer = start.bindMemory(to: Float.self, capacity: count)
                return
            }
        #endif
        mapping = nil
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: huge ? Self.hugePageBytes : 64)
        #if os(Linux)
            if huge { _ = madvise(raw, bytes, MADV_HUGEPAGE) }
        #endif
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    static let hugePageBytes = 2 << 20
    /// Buffers from this size on are memory maps.
    static let mappedBytes = 1 << 20

    #if os(Linux)
        /// A fresh zero-filled anonymous mapping holding `bytes` from an `alignment`-aligned start (nil if the
        /// kernel refuses; the heap then tries).
        static func map(_ bytes: Int, alignment: Int) -> (UnsafeMutableRawPointer, Int, UnsafeMutableRawPointer)? {
            let length = bytes + alignment
            guard let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                base != MAP_FAILED
            else { return nil }
            let offset = (alignment - Int(bitPattern: base) % alignment) % alignment
            return (base, length, base + offset)
        }
    #endif

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit {
        #if os(Linux)
            if let mapping {
                munmap(mapping.base, mapping.length)
                return
            }
        #endif
        UnsafeMutableRawPointer(pointer).deallocate()
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    public func zero() { pointer.update(repeating: 0, count: count) }
}

/// A contiguous, row-major view (offset + shape) into a FloatBuffer.
public struct Tensor: @unchecked Sendable {
    public let buffer: FloatBuffer
    public let offset: Int
    public let shape: [Int]

    public init(buffer: FloatBuffer, offset: Int = 0, shape: [Int]) {
        let n = shape.reduce(1, *)
        precondition(
            offset >= 0 && offset + n <= buffer.count,
            "view [\(offset), \(offset + n)) outside buffer of \(buffer.count)")
        self.buffer = buffer
        self.offset = offset
        self.shape = shape
    }

    /// A new zero tensor.
    public init(zeros shape: [Int]) {
        self.init(buffer: FloatBuffer(count: shape.reduce(1, *)), shape: shape)
    }

    /// A new tensor holding `values` (count must match the shape).
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) vs \(values.count) values")
        self.init(buffer: FloatBuffer(values), shape: shape)
    }

    public var count: Int { shape.reduce(1, *) }
    public var pointer: UnsafeMutablePointer<Float> { buffer.pointer + offset }
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// Same storage, new shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "reshape \(shape) → \(newShape)")
        return Tensor(buffer: buffer, offset: offset, shape: newShape)
    }

    /// Rows [start, start + n) along the first axis.
    public func rows(_ start: Int, _ n: Int) -> Tensor {
        let inner = shape.dropFirst().reduce(1, *)
        precondition(start >= 0 && start + n <= shape[0], "rows \(start)..<\(start + n) of \(shape)")
        return Tensor(buffer: buffer, offset: offset + start * inner, shape: [n] + shape.dropFirst())
    }

    /// A deep copy.
    public func copy() -> Tensor {
        let t = Tensor(zeros: shape)
        t.pointer.update(from: pointer, count: count)
        return t
    }

    public func zero() { pointer.update(repeating: 0, count: count) }
}

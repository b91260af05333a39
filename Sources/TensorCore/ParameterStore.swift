// One flat buffer per role (values, gradients, Adam moments): tensors are named views (offset, shape)
// into it, so zeroing, clipping, AdamW and checkpoint I/O are single flat loops and a training step
// allocates nothing. A frozen store has no gradient buffer at all.

public final class ParameterStore: @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public let entries: [Entry]
    public let values: FloatBuffer
    /// Present only when the store is trainable.
    public let gradients: FloatBuffer?
    private let index: [String: Int]

    /// Lays out `layout` (name, shape) in order, 16-float aligned. Values start at zero.
    public init(layout: [(String, [Int])], trainable: Bool) {
        var entries: [Entry] = []
        var offset = 0
        for (name, shape) in layout {
            entries.append(Entry(name: name, shape: shape, offset: offset))
            offset += (shape.reduce(1, *) + 15) / 16 * 16
        }
        self.entries = entries
        values = FloatBuffer(count: offset)
        gradients = trainable ? FloatBuffer(count: offset, hugePages: true) : nil
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() {
            precondition(index[e.name] == nil, "duplicate parameter name \(e.name)")
            index[e.name] = i
        }
        self.index = index
    }

    public var isTrainable: Bool { gradients != nil }
    public var parameterCount: Int { entries.reduce(0) { $0 + $1.count } }
    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// Pointer to a parameter's values.
    public func value(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let e = entry(name) else { preconditionFailure("no parameter named \(name)") }
        return values.pointer + e.offset
    }

    /// Pointer to a parameter's gradient, nil when the store is frozen.
    public func gradient(_ name: String) -> UnsafeMutablePointer<Float>? {
        guard let g = gradients else { return nil }
        guard let e = entry(name) else { preconditionFailure("no parameter named \(name)") }
        return g.pointer + e.offset
    }

    public func zeroGradients() { gradients?.zero() }
}

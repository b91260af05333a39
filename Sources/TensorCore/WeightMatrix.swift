// A linear layer's weight [O, I] in `nn.Linear` layout, dense Float32 or kept in a quantised GGUF form
// (QLoRA-style frozen base: dequantised on the fly). One type so layers, the vocabulary projection and
// losses take either without knowing which.

public enum WeightMatrix: @unchecked Sendable {
    case dense(UnsafePointer<Float>)
    case quantized(QuantizedMatrix)

    /// The Float32 pointer of a dense weight.
    public var densePointer: UnsafePointer<Float>? {
        if case let .dense(p) = self { return p }
        return nil
    }

    /// y[N, O] (+)= x[N, I] · Wᵀ.
    public func forward(out y: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, rows n: Int,
                        inFeatures: Int, outFeatures: Int, accumulate: Bool = false) {
        switch self {
        case let .dense(w):
            Linear.forward(out: y, input: x, weight: w, rows: n, inFeatures: inFeatures, outFeatures: outFeatures, accumulate: accumulate)
        case let .quantized(q):
            precondition(q.rows == outFeatures && q.columns == inFeatures, "quantised weight [\(q.rows), \(q.columns)] vs [\(outFeatures), \(inFeatures)]")
            QuantizedLinear.forward(out: y, input: x, weight: q, rows: n, accumulate: accumulate)
        }
    }

    /// forward: y = x Wᵀ  ⇒  dx (=|+=) dy W, dW += dyᵀ x (dense weights with a gradient only).
    public func backward(dInput dx: UnsafeMutablePointer<Float>?, dWeight dw: UnsafeMutablePointer<Float>?, dOut dy: UnsafePointer<Float>,
                         input x: UnsafePointer<Float>, rows n: Int, inFeatures: Int, outFeatures: Int, accumulateInput: Bool = false) {
        switch self {
        case let .dense(w):
            Linear.backward(dInput: dx, dWeight: dw, dOut: dy, input: x, weight: w, rows: n, inFeatures: inFeatures,
                            outFeatures: outFeatures, accumulateInput: accumulateInput)
        case let .quantized(q):
            precondition(dw == nil, "a quantised weight is frozen: it has no gradient")
            if let dx { QuantizedLinear.backwardInput(dInput: dx, dOut: dy, weight: q, rows: n, accumulate: accumulateInput) }
        }
    }

    /// Copies row r (I values) into `out` (embedding lookup).
    public func row(_ r: Int, into out: UnsafeMutablePointer<Float>, columns: Int) {
        switch self {
        case let .dense(w): out.update(from: w + r * columns, count: columns)
        case let .quantized(q): q.dequantizeRows(r..<(r + 1), into: out)
        }
    }
}

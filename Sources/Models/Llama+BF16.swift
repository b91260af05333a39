// A bf16 copy of a frozen base: every matrix (projections, embedding, lm_head) stored as BF16 and
// multiplied in bf16 (inputs rounded to bf16, products summed in fp32: QuantizedLinear, _CKernels/BF16.c),
// the semantics of llama.cpp's BF16 weights and torch's bf16 matmuls. Norms, biases, RoPE, attention,
// softmax and the residual stream stay fp32. Half the weight bytes of fp32 (batch-1 decoding is
// bandwidth-bound) and, on CPUs with AVX512_BF16, twice the multiply rate (batched decoding is
// compute-bound). Log-probs differ from fp32 by bf16's precision (~2⁻⁸ relative per input).

import TensorCore

extension LlamaModel {
    /// A frozen model with this one's weights in BF16 (quantised weights are dequantised first, then rounded).
    /// Adapters are not carried over: attach them to the copy.
    public func withBF16Weights() -> LlamaModel {
        var matrices: [String: QuantizedMatrix] = [:]
        for (name, shape) in Self.layout(config) where shape.count == 2 {
            switch matrix(name) {
            case let .quantized(q) where q.type == .bf16:
                matrices[name] = q
            case let .quantized(q):
                let dense = FloatBuffer(count: q.rows * q.columns)
                q.dequantize(into: dense.pointer)
                matrices[name] = QuantizedMatrix(bf16From: dense.pointer, rows: shape[0], columns: shape[1])
            case let .dense(p):
                matrices[name] = QuantizedMatrix(bf16From: p, rows: shape[0], columns: shape[1])
            }
        }
        let copy = LlamaModel(config: config, trainable: false, quantized: matrices)
        for e in copy.weights.entries { copy.weights.value(e.name).update(from: weights.value(e.name), count: e.count) }
        return copy
    }

    /// Whether the matrices are stored in BF16 (`withBF16Weights`).
    public var hasBF16Weights: Bool { quantizedWeights.values.contains { $0.type == .bf16 } }
}

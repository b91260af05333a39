// SmolLM2 with its matrices in bf16 (`withBF16Weights`): the weights are the rounded fp32 ones; decoding
// through the KV cache (12–16 rows: the transposed tile) gives the logits of a full forward pass (the same
// tile in 16-row blocks) within bf16 noise on every kernel path, and against transformers in fp32 the
// log-probs move only by bf16's precision. The products themselves are checked exactly (1e-5 of Σ|terms|) in
// QuantizedMatrixTests.

import Foundation
import ModelFormats
import TensorCore
import Testing
import _SharedData

@testable import Models

@Suite(.serialized) struct BF16BaseTests {
    static let bf16: Result<LlamaModel, Error> = Result { try SmolLM2.get().0.withBF16Weights() }

    @Test func weightsAreTheRoundedFloat32Ones() throws {
        let (dense, _) = try SmolLM2.get()
        let m = try Self.bf16.get()
        #expect(m.hasBF16Weights && !dense.hasBF16Weights)
        #expect(m.quantizedWeights.count == 30 * 7 + 1 && m.quantizedWeights.values.allSatisfy { $0.type == .bf16 })
        let bytes = m.quantizedWeights.values.reduce(0) { $0 + $1.byteCount } + m.weights.values.count * 4
        #expect(bytes < 270_000_000, "weight bytes \(bytes)")  // vs 538 MB in fp32
        let name = "model.layers.7.mlp.down_proj.weight"
        let q = try #require(m.quantizedWeights[name])
        let row = FloatBuffer(count: q.columns)
        q.dequantizeRows(100..<101, into: row.pointer)
        let src = dense.weights.value(name) + 100 * q.columns
        for c in 0..<q.columns {
            let w = src[c]
            let want =
                w == 0 || w.isSubnormal
                ? 0
                : (w / Float(sign: .plus, exponent: w.exponent - 7, significand: 1))
                    .rounded(.toNearestOrEven) * Float(sign: .plus, exponent: w.exponent - 7, significand: 1)
            #expect(row.pointer[c] == want, "column \(c): \(row.pointer[c]) vs \(want) from \(w)")
        }
    }

    @Test func decodingMatchesTheFullForward() throws {
        let m = try Self.bf16.get()
        let v = m.config.vocabularySize, b = 14, t = 9
        var rng = RNG(seed: 5)
        let ids = (0..<(b * t)).map { _ in Int32(rng.next() % UInt64(v)) }
        // Full forward over all positions (many-row path).
        let acts = LlamaActivations(config: m.config, batchSize: b, length: t)
        let h = m.forward(TokenBatch(batchSize: b, length: t, tokens: ids), adapter: nil, into: acts)
        let full = m.logits(h.pointer, rows: b * t)
        // The same forward with the fp32 weights: bf16's own noise (every input and weight rounded), the scale
        // of the bound below.
        let dense = try SmolLM2.get().0
        let hd = dense.forward(
            TokenBatch(batchSize: b, length: t, tokens: ids), adapter: nil,
            into: LlamaActivations(config: m.config, batchSize: b, length: t))
        let fp32 = dense.logits(hd.pointer, rows: b * t)
        var noise = 0.0
        for e in 0..<(b * t * v) { noise += Double(abs(fp32.pointer[e] - full.pointer[e])) }
        noise /= Double(b * t * v)
        // Prefill the first t − 3 positions, then 3 decode steps of 14 rows each.
        let cache = KVCache(config: m.config, batchSize: b, capacity: t)
        var hidden = m.forwardCached(
            TokenBatch(batchSize: b, length: t - 3, tokens: (0..<b).flatMap { ids[($0 * t)..<($0 * t + t - 3)] }),
            cache: cache)
        var worst: Float = 0, total = 0.0, argmaxMismatches = 0
        for step in (t - 3)..<t {
            if step > t - 3 {
                hidden = m.forwardCached(
                    TokenBatch(
                        batchSize: b, length: 1, tokens: (0..<b).map { ids[$0 * t + step - 1] },
                        positions: [Int32](repeating: Int32(step - 1), count: b)), cache: cache)
            }
            let logits = m.logits(hidden.pointer, rows: b)
            for r in 0..<b {
                for j in 0..<v {
                    let e = abs(logits.pointer[r * v + j] - full.pointer[(r * t + step - 1) * v + j])
                    worst = max(worst, e)
                    total += Double(e)
                }
            }
            for r in 0..<b {  // the greedy choice agrees wherever the full forward's top-2 margin exceeds 0.5
                let row = Array(UnsafeBufferPointer(start: full.pointer + (r * t + step - 1) * v, count: v))
                let best = row.indices.max { row[$0] < row[$1] }!
                let second = row.indices.filter { $0 != best }.map { row[$0] }.max()!
                let dec = UnsafeBufferPointer(start: logits.pointer + r * v, count: v)
                if row[best] - second > 0.5 && dec.indices.max(by: { dec[$0] < dec[$1] })! != best {
                    argmaxMismatches += 1
                }
            }
        }
        let mean = total / Double(3 * b * v)
        // The products compute each row alike at any batch size (the transposed tile, also in 16-row blocks
        // for the full forward), but attention does not (decode kernel vs fused blocks or sgemm), and rounding
        // inputs to bf16 is discontinuous: the fp32 summation-order differences flip single roundings of the
        // next layer's inputs. Those flips are a fraction of what rounding every input does, so the logits
        // move by well under bf16's own noise: measured mean 0.027 (AVX512_BF16), 0.024 (AVX2), 0.052 (portable)
        // against a bf16-vs-fp32 mean of 0.13; max 0.23–0.31. (Before the products were batch-invariant, AVX2
        // gave 0.046 / 0.54 with sgemm in the full forward.) A wiring error (wrong row, position or cache entry)
        // moves them by whole units.
        #expect(mean <= 0.5 * noise && worst <= 0.5, "mean |Δlogit| \(mean) (bf16 vs fp32: \(noise)), max \(worst)")
        #expect(argmaxMismatches == 0)
    }

    @Test(SharedData.needs("reference/logits_golden.json")) func logProbsStayWithinBF16PrecisionOfTransformers() throws
    {
        let m = try Self.bf16.get()
        let golden = try Shared.json("reference/logits_golden.json")
        var errors: [Double] = []
        for case let item as [String: Any] in golden["cases"] as! [Any] { errors += goldenTop10Errors(m, item).errors }
        let worst = errors.max() ?? .nan, total = errors.reduce(0, +), count = errors.count
        // bf16 keeps 8 significant bits (relative rounding ≤ 2⁻⁹ per input); measured mean 0.021, worst 0.32.
        #expect(total / Double(count) <= 0.05 && worst <= 0.5, "mean \(total / Double(count)), worst \(worst)")
    }
}

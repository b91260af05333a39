// Gradient accumulation: one batch of 8 rows equals 8 micro-batches of 1 row accumulated, when the
// loss is normalised by the total number of counted tokens (TRL's invariant). Padded rows included.

import Foundation
import TensorCore
import Testing
import _TestSupport

@testable import Models

@Suite struct GradientAccumulationTests {
    static func tinyModel() throws -> LlamaModel {
        RandomModel.tinyLlama(trainable: true)
    }

    /// Adds the gradient of Σ_rows CE / totalCount for `rows` into the model's gradients.
    static func accumulate(_ model: LlamaModel, rows: [[Int32]], totalCount: Int) {
        let batch = TokenBatch(rows: rows, padID: 0)
        let acts = LlamaActivations(config: model.config, batchSize: batch.batchSize, length: batch.length)
        let hidden = model.forward(batch, adapter: nil, into: acts)
        var targets = [Int32](repeating: -100, count: batch.tokenCount)
        for (b, r) in rows.enumerated() { for t in 0..<(r.count - 1) { targets[b * batch.length + t] = r[t + 1] } }
        let c = model.config
        let dLogp = [Float](repeating: -1 / Float(totalCount), count: batch.tokenCount)
        let dHidden = FloatBuffer(count: batch.tokenCount * c.hiddenSize)
        targets.withUnsafeBufferPointer { t in
            _ = TokenLogProbs.forwardBackward(
                dHidden: dHidden.pointer, dWeight: model.outputWeightGradient, logProbs: nil,
                dLogProbs: dLogp, hidden: hidden.pointer, weight: model.outputWeight,
                targets: t.baseAddress!, rows: batch.tokenCount, channels: c.hiddenSize,
                vocabulary: c.vocabularySize)
        }
        model.backward(dOutput: dHidden.pointer, acts: acts)
    }

    @Test func oneBatchOfEightEqualsEightBatchesOfOne() throws {
        var rng = RNG(seed: 5)
        let rows: [[Int32]] = (0..<8).map { i in (0..<(6 + i % 3)).map { _ in Int32(rng.next() % 256) } }
        let total = rows.reduce(0) { $0 + $1.count - 1 }
        let a = try Self.tinyModel(), b = try Self.tinyModel()
        Self.accumulate(a, rows: rows, totalCount: total)
        for r in rows { Self.accumulate(b, rows: [r], totalCount: total) }
        let ga = a.weights.gradients!.array, gb = b.weights.gradients!.array
        var maxDiff: Float = 0, maxAbs: Float = 0
        for i in ga.indices { maxDiff = max(maxDiff, abs(ga[i] - gb[i])); maxAbs = max(maxAbs, abs(ga[i])) }
        #expect(maxAbs > 0)
        #expect(maxDiff <= 1e-6 * max(1, maxAbs), "max gradient difference \(maxDiff)")
    }
}

@Suite struct ActivationCheckpointingTests {
    /// Recomputing each layer in backward gives bit-identical gradients (full model and LoRA with dropout).
    @Test(arguments: [false, true])
    func checkpointedGradientsAreIdentical(lora: Bool) throws {
        var grads: [[Float]] = []
        for checkpointed in [false, true] {
            let m = RandomModel.tinyLlama(trainable: !lora)
            var adapter: LoRAAdapter?
            if lora {
                var cfg = LoRAConfig()
                cfg.dropout = 0.2
                adapter = try m.addAdapter(named: "p", config: cfg, seed: 1)
                var rng = RNG(seed: 2)
                rng.fillNormal(adapter!.store.values.pointer, count: adapter!.store.values.count, std: 0.05)
            }
            let rows: [[Int32]] = [[1, 5, 9, 200, 3, 4], [7, 8, 100]]
            let batch = TokenBatch(rows: rows, padID: 0)
            let acts = LlamaActivations(
                config: m.config, batchSize: 2, length: batch.length, checkpointed: checkpointed)
            acts.isTraining = true
            acts.dropoutSeed = 9
            let h = m.forward(batch, adapter: adapter, into: acts)
            let n = batch.tokenCount, c = m.config
            let targets: [Int32] = (0..<n).map { i in i % batch.length + 1 < batch.length ? batch.tokens[i + 1] : -100 }
            let dH = FloatBuffer(count: n * c.hiddenSize)
            targets.withUnsafeBufferPointer { tp in
                _ = TokenLogProbs.forwardBackward(
                    dHidden: dH.pointer, dWeight: m.outputWeightGradient, logProbs: nil,
                    dLogProbs: [Float](repeating: -0.1, count: n), hidden: h.pointer,
                    weight: m.outputWeight, targets: tp.baseAddress!, rows: n,
                    channels: c.hiddenSize, vocabulary: c.vocabularySize)
            }
            m.backward(dOutput: dH.pointer, acts: acts)
            grads.append(lora ? adapter!.store.gradients!.array : m.weights.gradients!.array)
        }
        #expect(grads[0] == grads[1])
        #expect(grads[0].contains { $0 != 0 })
    }
}

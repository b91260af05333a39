// The 2-layer random Llama of shared/reference/tiny-llama against PyTorch: logits, mean cross-entropy
// and every parameter gradient. Tolerances are the and are not to be loosened.

import Foundation
import ModelFormats
import TensorCore
import Testing
import _SharedData

@testable import Models

@Suite(SharedData.needs("reference/tiny-llama")) struct TinyLlamaGoldenTests {
    let dir = Shared.url("reference/tiny-llama")

    func loadModel() throws -> (LlamaModel, [String: Any]) {
        let model = try LlamaModel.load(huggingFaceDirectory: dir, trainable: true)
        return (model, try Shared.json("reference/tiny-llama/tiny_llama_golden.json"))
    }

    @Test func configMatches() throws {
        let (model, _) = try loadModel()
        let c = model.config
        #expect(c.hiddenSize == 64 && c.layerCount == 2 && c.headCount == 4 && c.kvHeadCount == 2)
        #expect(c.intermediateSize == 128 && c.vocabularySize == 256 && c.tiesWordEmbeddings)
    }

    @Test func logitsLossAndGradientsMatchPyTorch() throws {
        let (model, golden) = try loadModel()
        let ids = (golden["input_ids"] as! [Int]).map(Int32.init)
        let t = ids.count, c = model.config, v = c.vocabularySize
        let batch = TokenBatch(batchSize: 1, length: t, tokens: ids)
        let acts = LlamaActivations(config: c, batchSize: 1, length: t)
        let hidden = model.forward(batch, adapter: nil, into: acts)

        // Hidden states after layer 0 and the final norm.
        let hs = golden["hidden_states"] as! [Any]
        let layer0 = hs[1] as! [Any]  // [T][C]
        var maxHidden: Float = 0
        for i in 0..<t {
            for j in 0..<c.hiddenSize {
                maxHidden = max(maxHidden, abs(acts.x[1].pointer[i * c.hiddenSize + j] - floats(layer0[i])[j]))
            }
        }
        #expect(maxHidden <= 1e-5, "layer-0 hidden max abs error \(maxHidden)")

        // Logits.
        let logits = FloatBuffer(count: t * v)
        model.outputWeight.forward(
            out: logits.pointer, input: hidden.pointer, rows: t, inFeatures: c.hiddenSize, outFeatures: v)
        let goldenLogits = golden["logits"] as! [Any]
        var maxErr: Float = 0
        for i in 0..<t {
            let row = floats(goldenLogits[i])
            for j in 0..<v { maxErr = max(maxErr, abs(logits.pointer[i * v + j] - row[j])) }
        }
        #expect(maxErr <= 1e-5, "logits max abs error \(maxErr)")

        // Mean next-token cross-entropy, fused forward + backward through the chunked head.
        let targets = Array(ids.dropFirst()) + [-100]
        let counted = t - 1
        let dLogp = [Float](repeating: -1 / Float(counted), count: t)
        let dHidden = FloatBuffer(count: t * c.hiddenSize)
        let sum = targets.withUnsafeBufferPointer { tp in
            TokenLogProbs.forwardBackward(
                dHidden: dHidden.pointer, dWeight: model.outputWeightGradient, logProbs: nil,
                dLogProbs: dLogp, hidden: hidden.pointer, weight: model.outputWeight,
                targets: tp.baseAddress!, rows: t, channels: c.hiddenSize, vocabulary: v, chunkRows: 5)
        }
        let loss = -sum / Double(counted)
        let goldenLoss = (golden["loss_mean"] as! NSNumber).doubleValue
        #expect(abs(loss - goldenLoss) / goldenLoss <= 1e-6, "loss \(loss) vs \(goldenLoss)")

        model.backward(dOutput: dHidden.pointer, acts: acts)
        let grads = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("grads.safetensors"))
        let norms = golden["grad_norms"] as! [String: Any]
        for e in model.weights.entries {
            let expected = try grads.floats("grad." + e.name)
            let g = UnsafeBufferPointer(start: model.weights.gradient(e.name)!, count: e.count)
            var maxAbs: Float = 0
            var sq = 0.0
            for i in 0..<e.count { maxAbs = max(maxAbs, abs(g[i] - expected[i])); sq += Double(g[i]) * Double(g[i]) }
            let goldenNorm = (norms[e.name] as! NSNumber).doubleValue
            #expect(maxAbs <= 1e-5, "\(e.name): max abs gradient error \(maxAbs)")
            #expect(
                abs(sq.squareRoot() - goldenNorm) / goldenNorm <= 1e-4,
                "\(e.name): norm \(sq.squareRoot()) vs \(goldenNorm)")
        }
        #expect(
            Set(grads.names) == Set(model.weights.entries.map { "grad." + $0.name }), "every golden gradient is checked"
        )
    }
}

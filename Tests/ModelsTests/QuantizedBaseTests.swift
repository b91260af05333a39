// SmolLM2 with its GGUF weights kept quantised (dequantised on the fly) against the dense Float32
// model dequantised at load: same logits up to summation order, same greedy generations, LoRA
// gradients through the quantised base, and ~5× less resident weight memory.

import Foundation
import ModelFormats
import TensorCore
import Testing
import _SharedData

@testable import Models

@Suite(.serialized) struct QuantizedBaseTests {
    static let quantized: Result<LlamaModel, Error> = Result {
        try LlamaModel.load(
            gguf: try GGUFFile(contentsOf: try DefaultModelLocation.existingGGUFFile()), keepQuantized: true)
    }

    @Test func weightsStayQuantised() throws {
        let q = try Self.quantized.get()
        #expect(q.quantizedWeights.count == 30 * 7 + 1)  // every projection and the tied embedding
        // The blocks (decode panels, built once a 12–16-row batch is decoded, add as much again).
        let bytes = q.quantizedWeights.values.reduce(0) { $0 + $1.rows * $1.rowBytes } + q.weights.values.count * 4
        #expect(bytes < 110_000_000, "weight bytes \(bytes)")  // vs 538 MB dense
    }

    @Test func logitsMatchDense() throws {
        let (dense, _) = try SmolLM2.get()
        let q = try Self.quantized.get()
        let ids: [Int32] = [504, 3575, 282, 4649, 314, 7042, 30, 657, 314, 1343, 327, 260, 414, 46682, 18669, 30]
        var outputs: [[Float]] = []
        for m in [dense, q] {
            let acts = LlamaActivations(config: m.config, batchSize: 1, length: ids.count)
            let h = m.forward(TokenBatch(batchSize: 1, length: ids.count, tokens: ids), adapter: nil, into: acts)
            outputs.append(m.logits(h.pointer, rows: ids.count).array)
        }
        var worst: Float = 0
        for i in outputs[0].indices { worst = max(worst, abs(outputs[0][i] - outputs[1][i])) }
        #expect(worst <= 2e-3, "max |Δlogit| \(worst)")  // fp32 summation order over 30 layers
    }

    /// The weights kept as Q4_1/Q8_0 are exactly the values transformers dequantised, so log-probs meet the
    /// fp32 model's golden bound (2e-4 of the fp32 reference, whose own fp32-vs-fp64 floor is 1e-4).
    @Test(SharedData.needs("reference/logits_golden.json")) func logProbsMatchTransformers() throws {
        let q = try Self.quantized.get()
        let golden = try Shared.json("reference/logits_golden.json")
        var worst = 0.0
        for case let item as [String: Any] in golden["cases"] as! [Any] {
            worst = max(worst, goldenTop10Errors(q, item).errors.max() ?? .nan)
        }
        #expect(worst <= 2e-4, "worst top-10 log-prob error \(worst)")
    }

    @Test(SharedData.needs("reference/generation_golden.json")) func greedyGenerationsMatchTransformers() throws {
        let q = try Self.quantized.get()
        let golden = try Shared.json("reference/generation_golden.json")
        let cases = golden["cases"] as! [[String: Any]]
        let prompts = cases.map { intArray($0["prompt_ids"]).map(Int32.init) }
        let results = try q.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 32, stopTokenIDs: [2]))
        for (i, c) in cases.enumerated() { #expect(results[i].tokens == intArray(c["generated_ids"]), "case \(i)") }
    }

    /// A 16-row batch decodes through the decode panels (12–16 rows), which compute exactly what the dense
    /// fp32 path computes: the same tokens and log-probs as the dense model (prefill differs from it only by
    /// the many-row path's tiling; the golden-sized batches above take the other few-row kernels).
    @Test(SharedData.needs("reference/generation_golden.json")) func sixteenRowDecodingMatchesDense() throws {
        let (dense, _) = try SmolLM2.get()
        let q = try Self.quantized.get()
        let golden = try Shared.json("reference/generation_golden.json")
        let base = (golden["cases"] as! [[String: Any]]).map { intArray($0["prompt_ids"]).map(Int32.init) }
        let prompts = (0..<16).map { r in Array(base[r % base.count].dropFirst(r / base.count)) }
        let options = GenerationOptions(maxNewTokens: 12)
        let a = try q.generate(prompts: prompts, options: options),
            b = try dense.generate(prompts: prompts, options: options)
        let panelled = q.quantizedWeights.values.allSatisfy(\.hasDecodePanels)
        #expect(panelled)
        var worst: Float = 0
        for r in 0..<16 {
            #expect(a[r].tokens == b[r].tokens, "row \(r)")
            for (x, y) in zip(a[r].tokenLogProbs, b[r].tokenLogProbs) { worst = max(worst, abs(x - y)) }
        }
        #expect(worst <= 1e-4, "largest |Δ log-prob| \(worst)")
    }

    @Test func loraTrainsThroughTheQuantisedBase() throws {
        let q = try Self.quantized.get()
        let name = "qlora-test"
        let adapter = try q.addAdapter(named: name, config: LoRAConfig(), seed: 1)
        var rng = RNG(seed: 2)
        for e in adapter.store.entries where e.name.hasSuffix("lora_B.weight") {
            rng.fillNormal(adapter.store.values.pointer + e.offset, count: e.count, std: 0.01)
        }
        let ids: [Int32] = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365]
        let t = ids.count, c = q.config
        let acts = LlamaActivations(config: c, batchSize: 1, length: t)
        let h = q.forward(TokenBatch(batchSize: 1, length: t, tokens: ids), adapter: adapter, into: acts)
        let targets = Array(ids.dropFirst()) + [-100]
        let dH = FloatBuffer(count: t * c.hiddenSize)
        targets.withUnsafeBufferPointer { tp in
            _ = TokenLogProbs.forwardBackward(
                dHidden: dH.pointer, dWeight: q.outputWeightGradient, logProbs: nil,
                dLogProbs: [Float](repeating: -1 / Float(t - 1), count: t), hidden: h.pointer,
                weight: q.outputWeight, targets: tp.baseAddress!, rows: t, channels: c.hiddenSize,
                vocabulary: c.vocabularySize)
        }
        q.backward(dOutput: dH.pointer, acts: acts)
        let g = adapter.store.gradients!.array
        #expect(g.allSatisfy(\.isFinite) && g.contains { $0 != 0 })
    }
}

// LoRA on the tiny Llama: B = 0 leaves logits bit-identical, gradients match finite differences
// (with and without dropout), merge ≡ adapter on, several adapters switch per forward, and training
// touches only the adapter.

import Foundation
import TensorCore
import Testing
import _TestSupport

@testable import Models

@Suite struct LoRATests {
    static let ids: [Int32] = [5, 17, 200, 31, 9, 77, 3, 140]

    static func model(trainable: Bool = false) throws -> LlamaModel {
        RandomModel.tinyLlama(trainable: trainable)
    }

    static func logits(_ m: LlamaModel, _ adapter: LoRAAdapter? = nil) -> [Float] {
        let acts = LlamaActivations(config: m.config, batchSize: 1, length: ids.count)
        let h = m.forward(TokenBatch(batchSize: 1, length: ids.count, tokens: ids), adapter: adapter, into: acts)
        return m.logits(h.pointer, rows: ids.count).array
    }

    /// Mean next-token CE; when `backward`, gradients are accumulated into trainable stores.
    static func loss(
        _ m: LlamaModel, _ adapter: LoRAAdapter?, backward: Bool, dropoutSeed: UInt64 = 1, training: Bool = false
    ) -> Double {
        let t = ids.count, c = m.config
        let acts = LlamaActivations(config: c, batchSize: 1, length: t)
        acts.dropoutSeed = dropoutSeed
        acts.isTraining = training
        let h = m.forward(TokenBatch(batchSize: 1, length: t, tokens: ids), adapter: adapter, into: acts)
        let targets = Array(ids.dropFirst()) + [-100]
        let dLogp = [Float](repeating: -1 / Float(t - 1), count: t)
        let dH = FloatBuffer(count: t * c.hiddenSize), lp = FloatBuffer(count: t)
        let sum = targets.withUnsafeBufferPointer { tp in
            TokenLogProbs.forwardBackward(
                dHidden: dH.pointer, dWeight: m.outputWeightGradient, logProbs: lp.pointer, dLogProbs: dLogp,
                hidden: h.pointer, weight: m.outputWeight, targets: tp.baseAddress!, rows: t,
                channels: c.hiddenSize, vocabulary: c.vocabularySize)
        }
        if backward { m.backward(dOutput: dH.pointer, acts: acts) }
        return -Double(sum) / Double(t - 1)
    }

    static func randomizeB(_ a: LoRAAdapter, seed: UInt64) {
        var rng = RNG(seed: seed)
        for e in a.store.entries where e.name.hasSuffix("lora_B.weight") {
            rng.fillNormal(a.store.values.pointer + e.offset, count: e.count, std: 0.05)
        }
    }

    @Test func zeroBLeavesLogitsBitIdentical() throws {
        let m = try Self.model()
        let base = Self.logits(m)
        let a = try m.addAdapter(named: "policy", config: LoRAConfig(), seed: 1)
        #expect(Self.logits(m, a) == base)
    }

    @Test(arguments: [Float(0), 0.3])
    func gradientsMatchFiniteDifferences(dropout: Float) throws {
        let m = try Self.model()
        var cfg = LoRAConfig()
        cfg.rank = 4
        cfg.alpha = 8
        cfg.dropout = dropout
        let a = try m.addAdapter(named: "policy", config: cfg, seed: 2)
        Self.randomizeB(a, seed: 3)
        _ = Self.loss(m, a, backward: true, training: true)
        for name in [
            LoRAAdapter.key(layer: 0, .q, "A"), LoRAAdapter.key(layer: 1, .down, "B"),
            LoRAAdapter.key(layer: 1, .v, "A"),
            LoRAAdapter.key(layer: 0, .gate, "B"),
        ] {
            let e = a.store.entry(name)!
            let p = a.store.values.pointer + e.offset
            let n = min(e.count, 24)
            let numeric = numericGradient(p, count: n) { Self.loss(m, a, backward: false, training: true) }
            expectClose(a.store.gradients!.pointer + e.offset, numeric, name)
        }
    }

    @Test func mergeEqualsAdapterOnAndUnmergeRestores() throws {
        let m = try Self.model()
        let base = Self.logits(m)
        let a = try m.addAdapter(named: "policy", config: LoRAConfig(), seed: 4)
        Self.randomizeB(a, seed: 5)
        let adapted = Self.logits(m, a)
        #expect(zip(adapted, base).contains { abs($0 - $1) > 1e-3 }, "the adapter changes the logits")
        m.merge(adapter: "policy")
        let merged = Self.logits(m)
        #expect(zip(merged, adapted).allSatisfy { abs($0 - $1) <= 1e-5 })
        m.unmerge(adapter: "policy")
        #expect(zip(Self.logits(m), base).allSatisfy { abs($0 - $1) <= 1e-5 })
    }

    @Test func adaptersSwitchPerForward() throws {
        let m = try Self.model()
        let base = Self.logits(m)
        let a = try m.addAdapter(named: "policy", config: LoRAConfig(), seed: 6),
            b = try m.addAdapter(named: "critic", config: LoRAConfig(), seed: 7)
        Self.randomizeB(a, seed: 8)
        Self.randomizeB(b, seed: 9)
        let pa = Self.logits(m, a)
        let pb = Self.logits(m, b)
        #expect(Self.logits(m) == base)
        #expect(Self.logits(m, a) == pa)
        #expect(pa != pb)
    }

    @Test func trainingTouchesOnlyTheAdapter() throws {
        let m = try Self.model()
        let baseBefore = m.weights.values.array
        #expect(m.weights.gradients == nil, "a frozen base has no gradient buffers")
        let a = try m.addAdapter(named: "policy", config: LoRAConfig(), seed: 10)
        let before = a.store.values.array
        let opt = AdamW(store: a.store)
        var losses: [Double] = []
        for step in 0..<3 {
            a.store.zeroGradients()
            losses.append(Self.loss(m, a, backward: true, dropoutSeed: UInt64(step), training: true))
            opt.update(learningRate: 1e-2)
        }
        #expect(m.weights.values.array == baseBefore)
        let after = a.store.values.array
        for e in a.store.entries {
            let changed = (0..<e.count).contains { after[e.offset + $0] != before[e.offset + $0] }
            #expect(changed, "\(e.name) did not change")
        }
        #expect(losses.last! < losses.first!)
    }

    @Test func badConfigIsRejected() {
        var cfg = LoRAConfig()
        cfg.targetModules = ["q_proj", "lm_head"]
        #expect(throws: ConfigError.self) { try cfg.validate() }
        cfg = LoRAConfig()
        cfg.rank = 0
        #expect(throws: ConfigError.self) { try cfg.validate() }
    }
}

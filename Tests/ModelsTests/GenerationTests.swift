// KV-cached generation on the tiny Llama: equals recomputing the full forward at every step, and a
// left-padded ragged batch equals each prompt generated alone.

import Foundation
import TensorCore
import Testing
import _TestSupport

@testable import Models

@Suite struct GenerationTests {
    static func model() throws -> LlamaModel {
        RandomModel.tinyLlama()
    }

    /// Greedy decoding without a cache: full forward over the whole sequence each step.
    static func uncachedGreedy(_ m: LlamaModel, adapter: LoRAAdapter? = nil, prompt: [Int32], steps: Int) -> (
        [Int], [Float]
    ) {
        var seq = prompt, out: [Int] = [], lps: [Float] = []
        for _ in 0..<steps {
            let acts = LlamaActivations(config: m.config, batchSize: 1, length: seq.count)
            let h = m.forward(TokenBatch(batchSize: 1, length: seq.count, tokens: seq), adapter: adapter, into: acts)
            let logits = m.logits(h.pointer + (seq.count - 1) * m.config.hiddenSize, rows: 1)
            var rng = RNG(seed: 0)
            let (t, lp) = Sampler.pick(
                logits.pointer, vocabulary: m.config.vocabularySize, options: SamplingOptions(temperature: 0), rng: &rng
            )
            out.append(t)
            lps.append(lp)
            seq.append(Int32(t))
        }
        return (out, lps)
    }

    @Test func cachedEqualsUncached() throws {
        let m = try Self.model()
        let prompt: [Int32] = [5, 17, 200, 31, 9]
        let (expected, expectedLP) = Self.uncachedGreedy(m, prompt: prompt, steps: 12)
        let got = try m.generate(prompts: [prompt], options: GenerationOptions(maxNewTokens: 12))[0]
        #expect(got.tokens == expected)
        for i in expectedLP.indices { #expect(abs(got.tokenLogProbs[i] - expectedLP[i]) <= 1e-5) }
        #expect(got.finishReason == .length)
    }

    @Test func raggedBatchEqualsSinglePrompts() throws {
        let m = try Self.model()
        let prompts: [[Int32]] = [[5, 17, 200, 31, 9], [44], [100, 3, 7]]
        let batched = try m.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 8))
        for (i, p) in prompts.enumerated() {
            let alone = try m.generate(prompts: [p], options: GenerationOptions(maxNewTokens: 8))[0]
            #expect(batched[i].tokens == alone.tokens, "row \(i)")
            for j in alone.tokenLogProbs.indices {
                #expect(abs(batched[i].tokenLogProbs[j] - alone.tokenLogProbs[j]) <= 1e-5)
            }
        }
    }

    /// A prompt given for several rows (GRPO's k samples, best-of-n) is prefilled once and its keys and values
    /// copied: each row, greedy or sampled, decodes as it does from its own prefill.
    @Test func repeatedPromptsPrefilledOnceDecodeAsTheirOwn() throws {
        let m = try Self.model()
        let adapter = try RandomModel.adapter(on: m, name: "repeat", seed: 5)
        let prompts: [[Int32]] = [[5, 17, 200, 31, 9], [44, 8], [5, 17, 200, 31, 9], [5, 17, 200, 31, 9], [44, 8]]
        let sampling = SamplingOptions(temperature: 1.1, topK: 30, seed: 9)
        for options in [GenerationOptions(maxNewTokens: 7), GenerationOptions(maxNewTokens: 7, sampling: sampling)] {
            let shared = try m.generate(prompts: prompts, adapter: adapter, options: options)
            let distinct = try m.generate(prompts: prompts, adapter: adapter, options: options, sharePrefill: false)
            for i in prompts.indices {
                #expect(shared[i].tokens == distinct[i].tokens, "row \(i)")
                #expect(
                    zip(shared[i].tokenLogProbs, distinct[i].tokenLogProbs).allSatisfy { abs($0 - $1) <= 1e-5 },
                    "row \(i)")
            }
            #expect(shared[0].tokens != shared[1].tokens)
        }
    }

    /// 16 rows (the decode size whose q/k/v and gate/up products run as one group) with a LoRA adapter on
    /// every projection: each row equals its own uncached greedy decode with the adapter.
    @Test func sixteenRowsWithAnAdapterEqualUncached() throws {
        let m = try Self.model()
        let adapter = try m.addAdapter(named: "decode-16", config: LoRAConfig(), seed: 3)
        var rng = RNG(seed: 4)
        for e in adapter.store.entries where e.name.hasSuffix("lora_B.weight") {
            rng.fillNormal(adapter.store.values.pointer + e.offset, count: e.count, std: 0.05)
        }
        let prompts: [[Int32]] = (0..<16).map { (r: Int) -> [Int32] in
            (0..<(1 + r % 5)).map { (j: Int) -> Int32 in Int32((r * 37 + j * 11) % 250 + 3) }
        }
        let batched = try m.generate(prompts: prompts, adapter: adapter, options: GenerationOptions(maxNewTokens: 6))
        for (r, p) in prompts.enumerated() {
            let (tokens, lps) = Self.uncachedGreedy(m, adapter: adapter, prompt: p, steps: 6)
            #expect(batched[r].tokens == tokens, "row \(r)")
            for j in lps.indices { #expect(abs(batched[r].tokenLogProbs[j] - lps[j]) <= 1e-5, "row \(r) step \(j)") }
        }
    }

    @Test func stopTokensAndSeededSampling() throws {
        let m = try Self.model()
        let greedy = try m.generate(prompts: [[1, 2, 3]], options: GenerationOptions(maxNewTokens: 10))[0]
        let stopAt = greedy.tokens[3]
        let stopped = try m.generate(
            prompts: [[1, 2, 3]], options: GenerationOptions(maxNewTokens: 10, stopTokenIDs: [stopAt]))[0]
        #expect(stopped.finishReason == .stop)
        #expect(stopped.tokens.last == stopAt && stopped.tokens.count == greedy.tokens.firstIndex(of: stopAt)! + 1)

        let opts = GenerationOptions(
            maxNewTokens: 16, sampling: SamplingOptions(temperature: 1.2, topK: 50, topP: 0.9, seed: 9))
        let a = try m.generate(prompts: [[1, 2, 3], [4]], options: opts),
            b = try m.generate(prompts: [[1, 2, 3], [4]], options: opts)
        #expect(a == b, "same seed, same samples")
        var other = opts
        other.sampling.seed = 10
        #expect(try m.generate(prompts: [[1, 2, 3], [4]], options: other) != a)
    }

    /// Rows are picked in parallel, but the sampling draws come from one generator in row order, skipping
    /// finished rows: the same samples as a row-by-row loop over uncached forwards with one RNG.
    @Test func sampledBatchDrawsInRowOrder() throws {
        let m = try Self.model()
        let prompts: [[Int32]] = [[5, 17, 200], [44, 9, 1], [100, 3, 7]]
        let sampling = SamplingOptions(temperature: 1.3, topK: 40, topP: 0.95, seed: 21)
        // A stop id that ends a row early, found by a first run.
        let probe = try m.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 10, sampling: sampling))
        let stop: Set<Int> = [probe[1].tokens[2]]
        let got = try m.generate(
            prompts: prompts, options: GenerationOptions(maxNewTokens: 10, sampling: sampling, stopTokenIDs: stop))
        var rng = RNG(seed: sampling.seed)
        var seqs = prompts, done = [Bool](repeating: false, count: prompts.count)
        var want = [[Int]](repeating: [], count: prompts.count)
        for _ in 0..<10 {
            for r in prompts.indices where !done[r] {
                let acts = LlamaActivations(config: m.config, batchSize: 1, length: seqs[r].count)
                let h = m.forward(
                    TokenBatch(batchSize: 1, length: seqs[r].count, tokens: seqs[r]), adapter: nil, into: acts)
                let logits = m.logits(h.pointer + (seqs[r].count - 1) * m.config.hiddenSize, rows: 1)
                let (t, _) = Sampler.pick(
                    logits.pointer, vocabulary: m.config.vocabularySize, options: sampling, rng: &rng)
                want[r].append(t)
                seqs[r].append(Int32(t))
                if stop.contains(t) { done[r] = true }
            }
        }
        #expect(got.map(\.tokens) == want)
        #expect(got.contains { $0.finishReason == .stop })
    }

    @Test func topKOneIsGreedy() throws {
        let m = try Self.model()
        let greedy = try m.generate(prompts: [[7, 8]], options: GenerationOptions(maxNewTokens: 6))[0]
        let k1 = try m.generate(
            prompts: [[7, 8]],
            options: GenerationOptions(maxNewTokens: 6, sampling: SamplingOptions(temperature: 0.7, topK: 1, seed: 3)))[
                0]
        #expect(greedy.tokens == k1.tokens)
    }
}

@Suite struct SamplerTests {
    /// The k-heap and the 30-nat candidate window give exactly the ids a full sort would.
    @Test func candidateSelectionMatchesAFullSort() {
        var rng = RNG(seed: 11)
        let v = 5000
        var z = (0..<v).map { _ in rng.normal() * 4 }
        z[17] = z[3]  // a tie: the lower id must come first
        z.withUnsafeBufferPointer { zp in
            let p = zp.baseAddress!
            let full = (0..<v).sorted { Sampler.better(p, $0, $1) }
            for k in [1, 2, 7, 50, 999] { #expect(Sampler.topK(p, count: v, k: k) == Array(full.prefix(k))) }
            let lse = Sampler.logSumExp(p, v)
            for topP: Float in [0.1, 0.5, 0.9, 0.99] {
                let cut = Sampler.cutNucleus(full, p, lse: lse, norm: 1, p: topP)!
                let floor = Reductions.max(p, count: v) - 30
                #expect(full.prefix(cut).allSatisfy { p[$0] >= floor }, "the nucleus lies inside the candidate window")
            }
        }
    }
}

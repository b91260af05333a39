// The groundwork the preference and RL trainers stand on, on a small random model (no files needed):
// adapters named per forward (backward follows the forward's record, whatever ran in between), scalar
// heads checked by finite differences, batched scoring equal to one sequence at a time, and context
// overflow as a typed error.

import Foundation
import TensorCore
import Testing
import _TestSupport

@testable import Models

@Suite struct ExplicitAdapterTests {
    /// −mean log p of the completion tokens, backpropagated into `adapter` (acts record it).
    static func lossBackward(_ m: LlamaModel, _ scored: ScoredBatch) {
        let k = scored.logProbs.count
        m.backward(scored, dLogProbs: [Float](repeating: -1 / Float(k), count: k))
    }

    /// Forwards of three other adapters, the bare base and a cached generation between a forward and its
    /// backward leave that backward's gradients bit-identical to the isolated forward/backward.
    @Test func interleavedForwardsLeaveGradientsBitIdentical() throws {
        let m = RandomModel.make()
        let policy = try RandomModel.adapter(on: m, name: "policy", dropout: 0.1, seed: 1)
        let others = try (2...4).map {
            try RandomModel.adapter(on: m, name: "other\($0)", dropout: 0.1, seed: UInt64($0))
        }
        let rows = RandomModel.rows([9, 6, 11], seed: 5)
        let batch = LabeledBatch(
            prompts: rows.map { Array($0.prefix(3)) }, completions: rows.map { Array($0.dropFirst(3)) }, padID: 0)
        func acts(_ seed: UInt64) -> LlamaActivations {
            let a = LlamaActivations(config: m.config, batchSize: 3, length: batch.batch.length)
            a.dropoutSeed = seed
            return a
        }

        let alone = try m.score(batch, adapter: policy, into: acts(7), training: true)
        Self.lossBackward(m, alone)
        let isolated = policy.store.gradients!.array
        #expect(isolated.contains { $0 != 0 })
        policy.store.zeroGradients()

        let scored = try m.score(batch, adapter: policy, into: acts(7), training: true)
        let otherRows = RandomModel.rows([4, 12], seed: 9)
        let otherBatch = LabeledBatch(rows: otherRows, lossMask: otherRows.map { $0.map { _ in true } }, padID: 0)
        var interleaved: [ScoredBatch] = []
        for (i, a) in (others + [nil]).enumerated() {
            interleaved.append(try m.score(otherBatch, adapter: a, into: acts(UInt64(20 + i)), training: true))
        }
        _ = try m.generate(prompts: otherRows, adapter: others[0], options: GenerationOptions(maxNewTokens: 4))
        Self.lossBackward(m, scored)
        #expect(policy.store.gradients!.array == isolated, "gradients after interleaved forwards differ")
        for a in others { #expect(a.store.gradients!.array.allSatisfy { $0 == 0 }, "\(a.name) received gradients") }
        // The interleaved forwards' own backwards still go to their adapters.
        Self.lossBackward(m, interleaved[1])
        #expect(others[1].store.gradients!.array.contains { $0 != 0 })
        #expect(policy.store.gradients!.array == isolated)
    }
}

@Suite struct ScalarHeadTests {
    static let rows = RandomModel.rows([5, 8, 3], seed: 11)

    /// L = Σ c_i r_i over the rows (score head) or over every real token (value head), backpropagated into
    /// the head and the adapter.
    static func loss(
        _ m: LlamaModel, _ adapter: LoRAAdapter, _ head: ScalarHead, perToken: Bool, leftPadding: Bool,
        backward: Bool
    ) -> Double {
        let batch = TokenBatch(rows: rows, padID: 2, leftPadding: leftPadding)
        let acts = LlamaActivations(config: m.config, batchSize: batch.batchSize, length: batch.length)
        let hidden = m.forward(batch, adapter: adapter, into: acts)
        let read =
            perToken
            ? (0..<batch.batchSize).flatMap { Array(batch.realTokens(row: $0)) }
            : (0..<batch.batchSize).map(batch.lastRealToken(row:))
        let r = head.forward(hidden: hidden.pointer, rows: read)
        let c = read.indices.map { Float(($0 * 7) % 5) - 1.7 }
        if backward {
            let dHidden = FloatBuffer(count: batch.tokenCount * m.config.hiddenSize)
            head.backward(dValues: c, hidden: hidden.pointer, rows: read, dHidden: dHidden.pointer)
            m.backward(dOutput: dHidden.pointer, acts: acts)
        }
        return zip(r, c).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func gradientsMatchFiniteDifferences(perToken: Bool, leftPadding: Bool) throws {
        let m = RandomModel.make()
        let adapter = try RandomModel.adapter(on: m, name: "critic", seed: 3)
        let head = ScalarHead(
            name: perToken ? "v_head.summary" : "score", hiddenSize: m.config.hiddenSize, bias: true, seed: 4, std: 0.3)
        _ = Self.loss(m, adapter, head, perToken: perToken, leftPadding: leftPadding, backward: true)
        let f = { Self.loss(m, adapter, head, perToken: perToken, leftPadding: leftPadding, backward: false) }
        for e in head.store.entries {
            let numeric = numericGradient(head.store.values.pointer + e.offset, count: e.count, f)
            expectClose(head.store.gradients!.pointer + e.offset, numeric, e.name)
        }
        for name in [LoRAAdapter.key(layer: 0, .q, "A"), LoRAAdapter.key(layer: 1, .down, "B")] {
            let e = adapter.store.entry(name)!
            let numeric = numericGradient(adapter.store.values.pointer + e.offset, count: min(e.count, 16), f)
            expectClose(adapter.store.gradients!.pointer + e.offset, numeric, name)
        }
    }

    /// The reward is read at the last real token by the row lengths, not by comparing ids with the pad id:
    /// a response ending in EOS when pad = EOS is read at that EOS (transformers' pad-id rule would read the
    /// token before it), a truncated response at its last token, on either padding side.
    @Test(arguments: [false, true])
    func readsTheLastRealTokenWhenPadEqualsEOS(leftPadding: Bool) {
        let eos: Int32 = 2
        // ends in EOS / truncated / EOS twice
        let rows: [[Int32]] = [[5, 6, 7, eos], [5, 6, 7, 8, 9, 10], [5, eos, eos]]
        let batch = TokenBatch(rows: rows, padID: eos, leftPadding: leftPadding)
        for (b, row) in rows.enumerated() {
            let i = batch.lastRealToken(row: b)
            #expect(i / batch.length == b && batch.tokens[i] == row.last!)
            #expect(batch.realTokens(row: b).count == row.count)
            #expect(leftPadding ? i % batch.length == batch.length - 1 : i % batch.length == row.count - 1)
        }
    }
}

@Suite struct BatchedScoringTests {
    static let prompts = RandomModel.rows([4, 1, 7, 3], seed: 21),
        completions = RandomModel.rows([6, 9, 2, 5], seed: 22)

    @Test(arguments: [false, true])
    func batchedEqualsOneSequenceAtATime(leftPadding: Bool) throws {
        let m = RandomModel.make()
        let adapter = try RandomModel.adapter(on: m, name: "policy", seed: 6)
        let batch = LabeledBatch(
            prompts: Self.prompts, completions: Self.completions, padID: 0, leftPadding: leftPadding)
        #expect(batch.batch.rowLengths == zip(Self.prompts, Self.completions).map { $0.count + $1.count })
        let acts = LlamaActivations(config: m.config, batchSize: 4, length: batch.batch.length)
        let scored = try m.score(batch, adapter: adapter, into: acts, training: true)
        var worst: Float = 0
        for b in 0..<4 {
            let alone = try m.sequenceLogProbs(
                prompt: Self.prompts[b], completion: Self.completions[b], adapter: adapter)
            let got = Array(scored.tokenLogProbs(row: b))
            #expect(got.count == Self.completions[b].count)
            for (x, y) in zip(got, alone) { worst = max(worst, abs(x - y)) }
        }
        // Only the summation order differs (other row counts per product); the bound is the one batched vs
        // uncached generation log-probs meet (GenerationTests). Measured ≤ 2.4e-6 (AVX2 and portable paths).
        #expect(worst <= 1e-5, "batched vs per-sequence log-probs differ by \(worst)")

        // Gradients: the batch's backward equals the sum of each row's own backward.
        let weights: [Float] = scored.rowRanges.enumerated().flatMap { b, r in
            [Float](repeating: Float(b + 1) / 10, count: r.count)
        }
        m.backward(scored, dLogProbs: weights)
        let batched = adapter.store.gradients!.array
        adapter.store.zeroGradients()
        for b in 0..<4 {
            let one = LabeledBatch(prompts: [Self.prompts[b]], completions: [Self.completions[b]], padID: 0)
            let a1 = LlamaActivations(config: m.config, batchSize: 1, length: one.batch.length)
            let s1 = try m.score(one, adapter: adapter, into: a1, training: true)
            m.backward(s1, dLogProbs: [Float](repeating: Float(b + 1) / 10, count: s1.logProbs.count))
        }
        let summed = adapter.store.gradients!.array
        let scale = summed.map(abs).max()!
        let diff = zip(batched, summed).map { abs($0 - $1) }.max()!
        #expect(scale > 0 && diff <= 1e-5 * scale, "batched vs summed gradients differ by \(diff) (max |g| \(scale))")
        #expect(!batched.contains { !$0.isFinite })
    }

    @Test func contextOverflowIsATypedError() throws {
        let m = RandomModel.make()
        let limit = m.config.maxPositions
        let long = RandomModel.rows([limit - 10, 11], seed: 3)
        #expect(throws: ModelError.self) { _ = try m.sequenceLogProbs(prompt: long[0], completion: long[1]) }
        do {
            _ = try m.generate(prompts: [long[0]], options: GenerationOptions(maxNewTokens: 20))
            Issue.record("generation past the context did not throw")
        } catch let error as ModelError {
            #expect(
                "\(error)".contains("\(limit)") && "\(error)".contains("--max-new-tokens to at most 10"), "\(error)")
        }
        // Exactly the context fits.
        #expect(try m.generate(prompts: [long[0]], options: GenerationOptions(maxNewTokens: 10))[0].tokens.count == 10)
    }
}

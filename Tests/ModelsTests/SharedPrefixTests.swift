// Shared prefixes (TokenBatch(rows:shareable:padID:)): rows that begin with the same prompt compute it once, and
// the log-probs, scalar-head reads and gradients (adapter and full weights, checkpointed or not) equal those of
// the same rows padded plainly, on the fused attention kernel (head dim 16) and the GEMM path (head dim 8).

import Foundation
import TensorCore
import Testing
import _TestSupport

@testable import Models

@Suite struct SharedPrefixTests {
    /// Two prompts with three and two completions of different lengths, and one prompt of its own. `long`: prefixes
    /// and rows' own tokens beyond the attention kernels' 16- and 32-token blocks, and a prompt that differs from
    /// another only in its last token (so it continues the same prefix row with its own first token).
    static func rows(vocabulary: Int, long: Bool = false) -> (prompts: [[Int32]], completions: [[Int32]]) {
        guard long else {
            let p = RandomModel.rows([12, 10, 9], seed: 31, vocabulary: vocabulary)
            let c = RandomModel.rows([5, 9, 2, 6, 3, 4], seed: 32, vocabulary: vocabulary)
            return ([p[0], p[1], p[0], p[1], p[0], p[2]], c)
        }
        let p = RandomModel.rows([34, 20, 10], seed: 33, vocabulary: vocabulary)
        let c = RandomModel.rows([25, 40, 3, 36, 20, 12], seed: 34, vocabulary: vocabulary)
        let twin = p[0].dropLast() + [(p[0].last! + 1) % Int32(vocabulary)]
        return ([p[0], p[1], p[0], p[1], Array(twin), p[2]], c)
    }

    static func models(trainable: Bool) -> [LlamaModel] {
        [RandomModel.make(trainable: trainable), RandomModel.tinyLlama(trainable: trainable)]
    }

    @Test func layoutGroupsRowsWithTheSamePrompt() {
        let (prompts, completions) = Self.rows(vocabulary: 64)
        let shared = LabeledBatch(prompts: prompts, completions: completions, padID: 0)
        let b = shared.batch
        let p = try! #require(b.prefixes)
        #expect(p.count == 3 && p.length == 11 && p.lengths == [11, 9, 8])  // each prompt but its last token
        #expect(p.ofRow == [0, 1, 0, 1, 0, 2])
        #expect(b.length == 10 && b.rowLengths == [6, 10, 3, 7, 4, 5])
        #expect(b.tokenCount == 3 * 11 + 6 * 10 && b.tokenCount < 6 * 19)
        #expect((0..<6).map(b.fullLength(row:)) == zip(prompts, completions).map { $0.count + $1.count })
        #expect(b.longestRow == 19 && b.rowTokens == 17 + 19 + 14 + 16 + 15 + 13)
        // Row 1's own tokens: the prompt's last token, then the completion, at positions 9…
        let own = b.realTokens(row: 1)
        #expect(own == (33 + 10)..<(33 + 20))
        #expect(Array(b.tokens[10..<20]) == [prompts[1].last!] + completions[1])
        #expect(Array(b.positions[10..<20]) == (9..<19).map(Int32.init))
        // Its targets are its completion, predicted from the last prompt token on.
        #expect(Array(shared.targets[own].dropLast()) == completions[1])
        #expect(shared.counted == completions.reduce(0) { $0 + $1.count })
        // No repeated prompt (or nothing saved): plain rows.
        #expect(
            LabeledBatch(prompts: [prompts[0], prompts[1]], completions: [[5], [6]], padID: 0).batch.prefixes == nil)
        #expect(TokenBatch(rows: [[3, 4, 5], [3, 4, 6]], shareable: [0, 0], padID: 0).prefixes == nil)
        // A prompt that differs from another only in its last token continues the same prefix row.
        let (longPrompts, longCompletions) = Self.rows(vocabulary: 64, long: true)
        let long = try! #require(
            LabeledBatch(prompts: longPrompts, completions: longCompletions, padID: 0).batch.prefixes)
        #expect(long.ofRow == [0, 1, 0, 1, 0, 2] && long.length == 33)
    }

    /// Scores the rows shared and plain through `adapter`, backpropagates Σ c·log p, and returns both runs'
    /// log-probs and gradients (the adapter's, or the weights' when it is nil).
    static func run(
        _ m: LlamaModel, adapter: LoRAAdapter?, checkpointed: Bool, vocabulary: Int, long: Bool = false
    ) throws -> [(logProbs: [Float], gradients: [Float])] {
        let (prompts, completions) = Self.rows(vocabulary: vocabulary, long: long)
        let rows = zip(prompts, completions).map { $0 + $1 }
        let masks = zip(prompts, completions).map { [Bool](repeating: false, count: $0.count) + $1.map { _ in true } }
        let shared = LabeledBatch(prompts: prompts, completions: completions, padID: 0)
        let plain = LabeledBatch(rows: rows, lossMask: masks, padID: 0)
        #expect(shared.batch.prefixes != nil && plain.batch.prefixes == nil)
        return try [shared, plain].map { batch in
            let acts = LlamaActivations(
                config: m.config, batchSize: 1, length: batch.batch.tokenCount, checkpointed: checkpointed)
            let scored = try m.score(batch, adapter: adapter, into: acts, training: true)
            let d = scored.logProbs.indices.map { Float($0 % 5) * 0.3 - 0.5 }
            m.backward(scored, dLogProbs: d)
            let store = adapter?.store ?? m.weights
            defer { store.zeroGradients() }
            return (scored.logProbs, store.gradients!.array)
        }
    }

    /// Whether a and b agree within `relative` of b's largest magnitude (a message with the worst entry if not).
    static func close(_ a: [Float], _ b: [Float], relative: Float) -> Bool {
        let scale = max(b.map(abs).max() ?? 0, 1e-12)
        guard a.count == b.count else { return false }
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        if worst > relative * scale { print("largest difference \(worst) against scale \(scale)") }
        return worst <= relative * scale
    }

    @Test(arguments: [false, true], [false, true])
    func adapterScoresAndGradientsEqualPlainRows(checkpointed: Bool, long: Bool) throws {
        for (i, m) in Self.models(trainable: false).enumerated() {
            let adapter = try RandomModel.adapter(on: m, name: "policy", seed: 3)
            let r = try Self.run(
                m, adapter: adapter, checkpointed: checkpointed, vocabulary: m.config.vocabularySize, long: long)
            #expect(Self.close(r[0].logProbs, r[1].logProbs, relative: 1e-5), "model \(i): log-probs differ")
            #expect(r[1].gradients.contains { $0 != 0 })
            #expect(Self.close(r[0].gradients, r[1].gradients, relative: 1e-5), "model \(i): adapter gradients differ")
        }
    }

    @Test(arguments: [false, true]) func fullWeightGradientsEqualPlainRows(long: Bool) throws {
        for (i, m) in Self.models(trainable: true).enumerated() {
            let r = try Self.run(m, adapter: nil, checkpointed: false, vocabulary: m.config.vocabularySize, long: long)
            #expect(Self.close(r[0].logProbs, r[1].logProbs, relative: 1e-5), "model \(i): log-probs differ")
            #expect(Self.close(r[0].gradients, r[1].gradients, relative: 1e-5), "model \(i): weight gradients differ")
        }
    }

    /// A scalar head read at each row's last token (a reward model over pairs) is the same either way.
    @Test func lastTokenReadsEqualPlainRows() throws {
        let m = RandomModel.tinyLlama()
        let head = ScalarHead(hiddenSize: m.config.hiddenSize, bias: false, seed: 4, std: 1)
        let (prompts, completions) = Self.rows(vocabulary: m.config.vocabularySize)
        let rows = zip(prompts, completions).map { $0 + $1 }
        let shared = TokenBatch(rows: rows, shareable: prompts.map(\.count), padID: 0)
        let plain = TokenBatch(rows: rows, padID: 0)
        #expect(shared.prefixes != nil)
        let scores = [shared, plain].map { b in
            let acts = LlamaActivations(config: m.config, batchSize: 1, length: b.tokenCount)
            return head.scores(hidden: m.forward(b, adapter: nil, into: acts).pointer, batch: b)
        }
        #expect(Self.close(scores[0], scores[1], relative: 1e-5))
    }
}

// Per-token log-probabilities of given tokens (the "sequence log-probs" of DPO, PPO, RLOO, GRPO): one
// forward over a whole padded batch through a named adapter, the vocabulary product only for the scored
// rows (prompt and padding positions are skipped), and — when the forward was a training one — the
// backward from ∂L/∂logp (plus any head's ∂L/∂h) into the adapter or weights.

import TensorCore

/// The log-probs of one scored batch, with what backward needs (the activations and each row's lse).
public final class ScoredBatch: @unchecked Sendable {
    public let batch: LabeledBatch
    /// The activations of the forward (hidden state `acts.output`, the adapter it ran through).
    public let acts: LlamaActivations
    /// Flat indices (into the forward's tokens, `TokenBatch.tokenCount`) of the scored positions, in order; position i predicts token i + 1.
    public let scoredPositions: [Int]
    /// log p of each scored token, aligned with `scoredPositions`.
    public let logProbs: [Float]
    let lse: [Float]
    /// Per row, its range in `scoredPositions` / `logProbs`.
    public let rowRanges: [Range<Int>]
    /// The sampling temperature the log-probs are under: log softmax(logits / T).
    public let temperature: Float

    init(
        batch: LabeledBatch, acts: LlamaActivations, scoredPositions: [Int], logProbs: [Float], lse: [Float],
        temperature: Float
    ) {
        self.temperature = temperature
        self.batch = batch
        self.acts = acts
        self.scoredPositions = scoredPositions
        self.logProbs = logProbs
        self.lse = lse
        var ranges: [Range<Int>] = [], i = 0
        for b in 0..<batch.batch.batchSize {
            let start = i, end = batch.batch.paddedRow(b).upperBound
            while i < scoredPositions.count && scoredPositions[i] < end { i += 1 }
            ranges.append(start..<i)
        }
        rowRanges = ranges
    }

    /// The final hidden state [tokenCount, C] (input of the vocabulary projection and of scalar heads).
    public var hidden: UnsafePointer<Float> { UnsafePointer(acts.output.pointer) }

    /// Row b's scored log-probs, in token order.
    public func tokenLogProbs(row b: Int) -> ArraySlice<Float> { logProbs[rowRanges[b]] }

    /// Σ of row b's scored log-probs (Double accumulation).
    public func sequenceLogProb(row b: Int) -> Double { tokenLogProbs(row: b).reduce(0.0) { $0 + Double($1) } }

    /// ∂L/∂logp for `backward` when the loss sees each row only through its sequence log-prob Σ_t log p_t: every
    /// scored token of row b gets `perRow[b] · scale`.
    public func sequenceGradients(_ perRow: [Double], scale: Double = 1) -> [Float] {
        precondition(perRow.count == rowRanges.count, "one gradient per row")
        var out = [Float](repeating: 0, count: logProbs.count)
        for (b, range) in rowRanges.enumerated() { for j in range { out[j] = Float(perRow[b] * scale) } }
        return out
    }

    /// ∂L/∂logp for `backward` from per-token gradients in row order (`perToken[b][t]` for row b's t-th scored
    /// token), times `scale`.
    public func tokenGradients(_ perToken: [[Double]], scale: Double = 1) -> [Float] {
        precondition(zip(perToken, rowRanges).allSatisfy { $0.count == $1.count }, "one gradient per scored token")
        var out = [Float](repeating: 0, count: logProbs.count)
        for (b, range) in rowRanges.enumerated() {
            for (t, j) in range.enumerated() { out[j] = Float(perToken[b][t] * scale) }
        }
        return out
    }
}

extension LlamaModel {
    /// Scores `batch` through `adapter` (nil = the bare base) into `acts` (reused across calls; any batch of
    /// up to its capacity). `training` turns LoRA dropout on and is what `backward(_:dLogProbs:)` needs.
    /// `temperature` T gives log softmax(logits / T), the distribution `generate` samples from (RL rollouts):
    /// logits / T = W·(h / T), so the scored hidden rows are scaled by 1/T.
    ///
    /// - Throws: `ModelError.contextOverflow` when the rows are longer than the model's positions.
    public func score(
        _ batch: LabeledBatch, adapter: LoRAAdapter?, into acts: LlamaActivations,
        training: Bool = false, temperature: Float = 1
    ) throws -> ScoredBatch {
        precondition(temperature > 0, "scoring needs a temperature > 0")
        try checkContext(
            batch.batch.longestRow, what: "a row of \(batch.batch.longestRow) tokens",
            hint: "Truncate the rows (trainers: lower max_length).")
        acts.isTraining = training
        let hidden = forward(batch.batch, adapter: adapter, into: acts)
        let positions = batch.targets.indices.filter { batch.targets[$0] >= 0 }
        let k = positions.count, c = config.hiddenSize
        var logProbs = [Float](repeating: 0, count: k), lse = [Float](repeating: 0, count: k)
        if k > 0 {
            let (h, targets) = gather(positions, batch: batch, hidden: hidden.pointer, scale: 1 / temperature)
            targets.withUnsafeBufferPointer { t in
                logProbs.withUnsafeMutableBufferPointer { lp in
                    lse.withUnsafeMutableBufferPointer { l in
                        TokenLogProbs.forward(
                            logProbs: lp.baseAddress!, lse: l.baseAddress!, hidden: h, weight: outputWeight,
                            targets: t.baseAddress!, rows: k, channels: c, vocabulary: config.vocabularySize)
                    }
                }
            }
        }
        return ScoredBatch(
            batch: batch, acts: acts, scoredPositions: positions, logProbs: logProbs, lse: lse,
            temperature: temperature)
    }

    /// Backpropagates ∂L/∂logp (`dLogProbs`, aligned with `scored.logProbs`) and optionally a head's
    /// ∂L/∂h ([tokenCount, C], added) through the vocabulary projection and the decoder, into the gradients of
    /// the weights (when trainable) and of the adapter the forward ran through.
    public func backward(_ scored: ScoredBatch, dLogProbs: [Float], dHidden extra: UnsafePointer<Float>? = nil) {
        precondition(dLogProbs.count == scored.logProbs.count, "one gradient per scored token")
        let c = config.hiddenSize, n = scored.batch.batch.tokenCount, k = scored.scoredPositions.count
        let dHidden = Scratch.buffer("score.dHidden", count: n * c)
        if let extra {
            dHidden.pointer.update(from: extra, count: n * c)
        } else {
            dHidden.pointer.update(repeating: 0, count: n * c)
        }
        if k > 0 {
            let inverse = 1 / scored.temperature
            let (h, targets) = gather(
                scored.scoredPositions, batch: scored.batch, hidden: scored.hidden, scale: inverse)
            let dh = Scratch.buffer("score.dHiddenScored", count: k * c)
            targets.withUnsafeBufferPointer { t in
                TokenLogProbs.backward(
                    dHidden: dh.pointer, dWeight: outputWeightGradient, dLogProbs: dLogProbs, hidden: h,
                    weight: outputWeight, targets: t.baseAddress!, lse: scored.lse, rows: k, channels: c,
                    vocabulary: config.vocabularySize)
            }
            if inverse != 1 { for i in 0..<(k * c) { dh.pointer[i] *= inverse } }  // ∂(h/T)/∂h = 1/T
            for (j, i) in scored.scoredPositions.enumerated() {
                Elementwise.add(dHidden.pointer + i * c, dHidden.pointer + i * c, dh.pointer + j * c, count: c)
            }
        }
        backward(dOutput: dHidden.pointer, acts: scored.acts)
    }

    /// The hidden rows at `positions` times `scale` (into a scratch buffer) and their targets.
    private func gather(_ positions: [Int], batch: LabeledBatch, hidden: UnsafePointer<Float>, scale: Float = 1) -> (
        UnsafePointer<Float>, [Int32]
    ) {
        let c = config.hiddenSize
        let h = Scratch.buffer("score.hidden", count: positions.count * c)
        for (j, i) in positions.enumerated() { (h.pointer + j * c).update(from: hidden + i * c, count: c) }
        if scale != 1 { for i in 0..<(positions.count * c) { h.pointer[i] *= scale } }
        return (UnsafePointer(h.pointer), positions.map { batch.targets[$0] })
    }

    /// log p(completion[i] | prompt, completion[..<i]) for every completion token, one forward pass
    /// through `adapter` (nil = the bare base).
    public func sequenceLogProbs(prompt: [Int32], completion: [Int32], adapter: LoRAAdapter? = nil) throws -> [Float] {
        try checkContext(
            prompt.count + completion.count,
            what: "the prompt plus completion (\(prompt.count) + \(completion.count) tokens)",
            hint: "Shorten the prompt or the completion.")
        let batch = LabeledBatch(prompts: [prompt], completions: [completion], padID: 0)
        let acts = LlamaActivations(config: config, batchSize: 1, length: batch.batch.length, checkpointed: true)
        return Array(try score(batch, adapter: adapter, into: acts).tokenLogProbs(row: 0))
    }

    /// Throws `ModelError.contextOverflow` when `tokens` positions exceed the model's context.
    public func checkContext(_ tokens: Int, what: String, hint: String) throws {
        guard tokens <= config.maxPositions else {
            throw ModelError.contextOverflow(what: what, tokens: tokens, limit: config.maxPositions, hint: hint)
        }
    }
}

// Per-token log-probabilities of a given completion (the "sequence log-prob" of RLHF code).

import TensorCore

extension LlamaModel {
    /// log p(completion[i] | prompt, completion[..<i]) for every completion token, one forward pass.
    public func sequenceLogProbs(prompt: [Int32], completion: [Int32]) -> [Float] {
        let ids = prompt + completion, t = ids.count, c = config
        let acts = LlamaActivations(config: c, batchSize: 1, length: t)
        let hidden = forward(TokenBatch(batchSize: 1, length: t, tokens: ids), into: acts)
        let targets = (0..<t).map { i in i + 1 < t && i + 1 >= prompt.count ? ids[i + 1] : -100 }
        let lp = FloatBuffer(count: t), lse = FloatBuffer(count: t)
        targets.withUnsafeBufferPointer { tp in
            TokenLogProbs.forward(logProbs: lp.pointer, lse: lse.pointer, hidden: hidden.pointer, weight: outputWeight,
                                  targets: tp.baseAddress!, rows: t, channels: c.hiddenSize, vocabulary: c.vocabularySize)
        }
        return (0..<completion.count).map { lp.pointer[prompt.count - 1 + $0] }
    }
}

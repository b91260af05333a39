// The SFT objective: next-token cross-entropy on the masked (assistant / completion) tokens,
//   L = −(1/N) Σ_{t ∈ mask} log p(x_t | x_<t),   N = masked tokens of the whole accumulated batch
// (TRL's SFTTrainer; Ouyang et al. 2022 §3.5), so 1 batch × 8 and 8 micro-batches × 1 give one gradient.

import Models
import TensorCore

enum SFTLoss {
    /// Sums over one micro-batch: −Σ log p, correct argmax predictions, and the tokens counted.
    struct Sums { var negLogProb = 0.0, correct = 0.0, counted = 0.0 }

    /// Loss of `hidden` ([N, C], the decoder's output) against `targets` (−100 = not trained), scaled by
    /// `1 / normalizer`. With `dHidden`, also writes ∂L/∂hidden and adds the vocabulary projection's
    /// gradient to `dWeight` (one fused pass; `TokenLogProbs`).
    static func evaluate(
        hidden: UnsafePointer<Float>, targets: [Int32], normalizer: Int, model: LlamaModel,
        dHidden: UnsafeMutablePointer<Float>?
    ) -> Sums {
        let c = model.config, n = targets.count
        var predictions = [Int32](repeating: -1, count: n)
        var sums = Sums()
        targets.withUnsafeBufferPointer { t in
            predictions.withUnsafeMutableBufferPointer { p in
                if let dHidden {
                    let dLogp = [Float](repeating: -1 / Float(normalizer), count: n)
                    sums.negLogProb = -Double(
                        TokenLogProbs.forwardBackward(
                            dHidden: dHidden, dWeight: model.outputWeightGradient, logProbs: nil, dLogProbs: dLogp,
                            hidden: hidden, weight: model.outputWeight, targets: t.baseAddress!, rows: n,
                            channels: c.hiddenSize, vocabulary: c.vocabularySize, predictions: p.baseAddress))
                } else {
                    let lp = FloatBuffer(count: n), lse = FloatBuffer(count: n)
                    TokenLogProbs.forward(
                        logProbs: lp.pointer, lse: lse.pointer, hidden: hidden, weight: model.outputWeight,
                        targets: t.baseAddress!, rows: n, channels: c.hiddenSize,
                        vocabulary: c.vocabularySize, predictions: p.baseAddress)
                    for j in 0..<n where t[j] >= 0 { sums.negLogProb -= Double(lp.pointer[j]) }
                }
            }
        }
        for j in 0..<n where targets[j] >= 0 {
            sums.counted += 1
            if predictions[j] == targets[j] { sums.correct += 1 }
        }
        return sums
    }
}

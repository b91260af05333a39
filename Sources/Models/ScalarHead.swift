// Scalar heads on the decoder's final hidden state h (after the last RMSNorm), r = w·h + b:
// a reward model reads it at the last real token of each row (Ouyang et al. 2022 §3.5; HF
// `LlamaForSequenceClassification.score`, no bias), a PPO value head at every token (Ziegler et al.
// 2019 §2; TRL's `v_head.summary`, with bias). Backward: ∂r/∂h = w, ∂r/∂w = h, ∂r/∂b = 1.

import ModelFormats
import TensorCore

public final class ScalarHead: @unchecked Sendable {
    /// The module name (`score`, `v_head.summary`); tensors are `<name>.weight` [1, C] and `<name>.bias` [1].
    public let name: String
    public let store: ParameterStore
    public let hiddenSize: Int
    public var hasBias: Bool { store.entry(biasKey) != nil }
    public var weightKey: String { name + ".weight" }
    public var biasKey: String { name + ".bias" }

    /// A head with weights ~ N(0, std²) (transformers' `initializer_range`, 0.02 for Llama) and zero bias.
    public init(
        name: String = "score", hiddenSize: Int, bias: Bool, trainable: Bool = true, seed: UInt64, std: Float = 0.02
    ) {
        self.name = name
        self.hiddenSize = hiddenSize
        var layout: [(String, [Int])] = [(name + ".weight", [1, hiddenSize])]
        if bias { layout.append((name + ".bias", [1])) }
        store = ParameterStore(layout: layout, trainable: trainable)
        var rng = RNG(seed: seed)
        rng.fillNormal(store.value(name + ".weight"), count: hiddenSize, std: std)
    }

    var weight: UnsafeMutablePointer<Float> { store.value(weightKey) }
    var bias: Float { hasBias ? store.value(biasKey)[0] : 0 }

    /// r[i] = w·hidden[rows[i]] + b for the given flat token indices of `hidden` ([N, C]).
    public func forward(hidden: UnsafePointer<Float>, rows: [Int]) -> [Float] {
        let c = hiddenSize, w = weight, b = bias
        return rows.map { Reductions.dot(hidden + $0 * c, w, count: c) + b }
    }

    /// Adds ∂L/∂hidden[rows[i]] += dr[i]·w into `dHidden` ([N, C]) and, when trainable, ∂L/∂w += dr[i]·hidden[rows[i]]
    /// and ∂L/∂b += dr[i] into the head's gradients. Rows may repeat (their contributions add).
    public func backward(
        dValues dr: [Float], hidden: UnsafePointer<Float>, rows: [Int], dHidden: UnsafeMutablePointer<Float>
    ) {
        precondition(dr.count == rows.count, "one gradient per row read")
        let c = hiddenSize, w = weight
        let dw = store.gradient(weightKey), db = hasBias ? store.gradient(biasKey) : nil
        for (g, row) in zip(dr, rows) where g != 0 {
            Elementwise.axpy(dHidden + row * c, g, w, count: c)
            if let dw { Elementwise.axpy(dw, g, hidden + row * c, count: c) }
            db?[0] += g
        }
    }

    /// The reward-model read: one score per row of `batch`, at its last real token.
    public func scores(hidden: UnsafePointer<Float>, batch: TokenBatch) -> [Float] {
        forward(hidden: hidden, rows: (0..<batch.batchSize).map(batch.lastRealToken(row:)))
    }

    /// The value-head read: one value per token, [B·T].
    public func values(hidden: UnsafePointer<Float>, batch: TokenBatch) -> [Float] {
        forward(hidden: hidden, rows: Array(0..<batch.tokenCount))
    }

    /// The head `name` from safetensors files that hold `<name>.weight` (a `…ForSequenceClassification`
    /// checkpoint's `score`); nil when none does. Only scalar heads ([1, hidden]) load.
    public static func load(
        named name: String, from files: [SafeTensorsFile], hiddenSize: Int,
        trainable: Bool = false
    ) throws -> ScalarHead? {
        guard let file = files.first(where: { $0.contains(name + ".weight") }) else { return nil }
        let info = try file.info(name + ".weight")
        guard info.shape == [1, hiddenSize] else {
            throw ModelError.shapeMismatch(
                file: file.url.path, name: name + ".weight", expected: [1, hiddenSize], found: info.shape)
        }
        let bias = files.first { $0.contains(name + ".bias") }
        let head = ScalarHead(name: name, hiddenSize: hiddenSize, bias: bias != nil, trainable: trainable, seed: 0)
        try file.copyFloats(name + ".weight", into: head.weight, count: hiddenSize)
        if let bias {
            guard try bias.info(name + ".bias").shape == [1] else {
                throw ModelError.shapeMismatch(
                    file: bias.url.path, name: name + ".bias", expected: [1],
                    found: try bias.info(name + ".bias").shape)
            }
            try bias.copyFloats(name + ".bias", into: head.store.value(head.biasKey), count: 1)
        }
        return head
    }
}

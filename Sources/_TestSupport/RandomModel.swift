// A small Llama with seeded random weights, built in code: tests of the model, scoring, heads and
// trainers run on it without any file (a user's clone has no ../shared).

import Models
import TensorCore

public enum RandomModel {
    /// 2 layers, hidden 32, 4 query / 2 key-value heads, MLP 48, vocabulary 64, 64 positions.
    public static let config = LlamaConfig(
        vocabularySize: 64, hiddenSize: 32, intermediateSize: 48, layerCount: 2, headCount: 4,
        kvHeadCount: 2, maxPositions: 64, eosTokenIDs: [2])

    /// Norm weights 1, every other weight N(0, std²) (0.2: large enough that attention is not uniform).
    public static func make(
        trainable: Bool = false, seed: UInt64 = 1, config c: LlamaConfig = config, std: Float = 0.2
    ) -> LlamaModel {
        let m = LlamaModel(config: c, trainable: trainable)
        var rng = RNG(seed: seed)
        for e in m.weights.entries {
            let p = m.weights.values.pointer + e.offset
            if e.name.hasSuffix("norm.weight") {
                p.update(repeating: 1, count: e.count)
            } else {
                rng.fillNormal(p, count: e.count, std: std)
            }
        }
        return m
    }

    /// An adapter on `m` with random A and B (so it changes the outputs).
    public static func adapter(on m: LlamaModel, name: String, rank: Int = 4, dropout: Float = 0, seed: UInt64) throws
        -> LoRAAdapter
    {
        var cfg = LoRAConfig()
        cfg.rank = rank
        cfg.alpha = Float(2 * rank)
        cfg.dropout = dropout
        let a = try m.addAdapter(named: name, config: cfg, seed: seed)
        var rng = RNG(seed: seed &+ 100)
        for e in a.store.entries where e.name.hasSuffix("lora_B.weight") {
            rng.fillNormal(a.store.values.pointer + e.offset, count: e.count, std: 0.1)
        }
        return a
    }

    /// The shape of the reference tiny Llama (`../shared/reference/tiny-llama`, made with transformers): 2 layers,
    /// hidden 64, 4 query / 2 key-value heads of 16, MLP 128, vocabulary 256 (one token per byte), 128 positions,
    /// tied embeddings, BOS 1, EOS 2.
    public static let tinyLlamaConfig = LlamaConfig(
        vocabularySize: 256, hiddenSize: 64, intermediateSize: 128, layerCount: 2, headCount: 4, kvHeadCount: 2,
        maxPositions: 128, tiesWordEmbeddings: true, bosTokenID: 1, eosTokenIDs: [2])

    /// A random model of the tiny Llama's shape and weight scale (its `initializer_range` 0.1), for tests that need
    /// its vocabulary and sizes but not its reference weights: they run without `../shared`; the golden
    /// comparisons load the real one.
    public static func tinyLlama(trainable: Bool = false, seed: UInt64 = 7) -> LlamaModel {
        make(trainable: trainable, seed: seed, config: tinyLlamaConfig, std: 0.1)
    }

    /// Seeded random token rows of the given lengths (ids 3 ..< vocabulary).
    public static func rows(_ lengths: [Int], seed: UInt64, vocabulary: Int = config.vocabularySize) -> [[Int32]] {
        var rng = RNG(seed: seed)
        return lengths.map { n in (0..<n).map { _ in Int32(3 + rng.next() % UInt64(vocabulary - 3)) } }
    }
}

// Llama-family decoder (Touvron et al. 2023; layout and parameter names follow HF `LlamaForCausalLM`):
//   x₀ = E[ids];  per layer:  h = x + W_o · Attn(RoPE(W_q n₁), RoPE(W_k n₁), W_v n₁),  n₁ = RMSNorm(x)
//                             x' = h + W_down (SiLU(W_gate n₂) ⊙ W_up n₂),          n₂ = RMSNorm(h)
//   output = RMSNorm(x_L);  logits = output · Eᵀ (tied) or · W_lmᵀ.
// Forward and backward are explicit per layer (llm.c style). The model stops at the final hidden
// state: losses go through `TokenLogProbs` with `outputWeight`, so new objectives need no kernel changes.
// B = batch, T = time, N = B·T tokens, C = hidden, F = MLP width.

import TensorCore

/// One batch of token rows, right- or left-padded to a common length T.
public struct TokenBatch: Sendable {
    public let batchSize: Int
    public let length: Int
    /// [B·T] token ids (pad positions hold any valid id).
    public let tokens: [Int32]
    /// [B·T] RoPE positions (0-based within each row's real tokens).
    public let positions: [Int32]
    /// [B·T] additive key mask (0 = attend, −∞ = padding), nil when no row is padded.
    public let keyMask: [Float]?

    public init(batchSize: Int, length: Int, tokens: [Int32], positions: [Int32]? = nil, keyMask: [Float]? = nil) {
        precondition(tokens.count == batchSize * length, "tokens \(tokens.count) vs \(batchSize)×\(length)")
        self.batchSize = batchSize
        self.length = length
        self.tokens = tokens
        self.positions = positions ?? (0..<batchSize).flatMap { _ in (0..<length).map(Int32.init) }
        self.keyMask = keyMask
    }

    /// Pads ragged rows to the longest with `padID`; `leftPadding` right-aligns them (for generation).
    public init(rows: [[Int32]], padID: Int32, leftPadding: Bool = false) {
        let t = rows.map(\.count).max() ?? 0
        var tokens: [Int32] = [], positions: [Int32] = [], mask: [Float] = []
        for r in rows {
            let pad = t - r.count
            let padTokens = [Int32](repeating: padID, count: pad), padMask = [Float](repeating: -.infinity, count: pad)
            let real = (0..<r.count).map(Int32.init)
            tokens += leftPadding ? padTokens + r : r + padTokens
            positions += leftPadding ? [Int32](repeating: 0, count: pad) + real : real + [Int32](repeating: 0, count: pad)
            mask += leftPadding ? padMask + [Float](repeating: 0, count: r.count) : [Float](repeating: 0, count: r.count) + padMask
        }
        let padded = rows.contains { $0.count != t }
        self.init(batchSize: rows.count, length: t, tokens: tokens, positions: positions, keyMask: padded ? mask : nil)
    }

    public var tokenCount: Int { batchSize * length }
}

public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    /// Base weights, HF names (`model.layers.0.self_attn.q_proj.weight`, …).
    public let weights: ParameterStore
    public let rope: RoPETable
    /// Named LoRA adapters on this (frozen) base.
    public internal(set) var adapters: [String: LoRAAdapter] = [:]
    /// The adapter applied in forward and backward; nil = base model only (e.g. the reference policy).
    public var activeAdapter: String? {
        didSet { precondition(activeAdapter == nil || adapters[activeAdapter!] != nil, "no adapter named \(activeAdapter!)") }
    }

    public init(config: LlamaConfig, trainable: Bool) {
        self.config = config
        let weights = ParameterStore(layout: Self.layout(config), trainable: trainable)
        self.weights = weights
        rope = RoPETable(headDim: config.headDim, base: config.ropeTheta, maxPositions: config.maxPositions,
                         scaling: config.ropeScaling)
        layerWeights = (0..<config.layerCount).map { LayerWeights(store: weights, layer: $0, config: config) }
    }

    /// Parameter names and shapes in HF order.
    public static func layout(_ c: LlamaConfig) -> [(String, [Int])] {
        var l: [(String, [Int])] = [("model.embed_tokens.weight", [c.vocabularySize, c.hiddenSize])]
        for i in 0..<c.layerCount {
            let p = "model.layers.\(i)."
            l.append((p + "input_layernorm.weight", [c.hiddenSize]))
            l.append((p + "self_attn.q_proj.weight", [c.qDim, c.hiddenSize]))
            l.append((p + "self_attn.k_proj.weight", [c.kvDim, c.hiddenSize]))
            l.append((p + "self_attn.v_proj.weight", [c.kvDim, c.hiddenSize]))
            if c.hasAttentionBias {
                l.append((p + "self_attn.q_proj.bias", [c.qDim]))
                l.append((p + "self_attn.k_proj.bias", [c.kvDim]))
                l.append((p + "self_attn.v_proj.bias", [c.kvDim]))
            }
            l.append((p + "self_attn.o_proj.weight", [c.hiddenSize, c.qDim]))
            l.append((p + "post_attention_layernorm.weight", [c.hiddenSize]))
            l.append((p + "mlp.gate_proj.weight", [c.intermediateSize, c.hiddenSize]))
            l.append((p + "mlp.up_proj.weight", [c.intermediateSize, c.hiddenSize]))
            l.append((p + "mlp.down_proj.weight", [c.hiddenSize, c.intermediateSize]))
        }
        l.append(("model.norm.weight", [c.hiddenSize]))
        if !c.tiesWordEmbeddings { l.append(("lm_head.weight", [c.vocabularySize, c.hiddenSize])) }
        return l
    }

    /// Resolved parameter pointers of one layer (value and, when trainable, gradient).
    struct Param {
        let value: UnsafeMutablePointer<Float>
        let grad: UnsafeMutablePointer<Float>?
        init(_ s: ParameterStore, _ name: String) { value = s.value(name); grad = s.gradient(name) }
    }

    struct LayerWeights {
        let norm1, q, k, v, o, norm2, gate, up, down: Param
        let qBias, kBias, vBias: Param?
        init(store s: ParameterStore, layer i: Int, config c: LlamaConfig) {
            let p = "model.layers.\(i)."
            norm1 = Param(s, p + "input_layernorm.weight")
            q = Param(s, p + "self_attn.q_proj.weight")
            k = Param(s, p + "self_attn.k_proj.weight")
            v = Param(s, p + "self_attn.v_proj.weight")
            o = Param(s, p + "self_attn.o_proj.weight")
            norm2 = Param(s, p + "post_attention_layernorm.weight")
            gate = Param(s, p + "mlp.gate_proj.weight")
            up = Param(s, p + "mlp.up_proj.weight")
            down = Param(s, p + "mlp.down_proj.weight")
            qBias = c.hasAttentionBias ? Param(s, p + "self_attn.q_proj.bias") : nil
            kBias = c.hasAttentionBias ? Param(s, p + "self_attn.k_proj.bias") : nil
            vBias = c.hasAttentionBias ? Param(s, p + "self_attn.v_proj.bias") : nil
        }

        func weight(_ kind: ProjectionKind) -> Param { [q, k, v, o, gate, up, down][kind.rawValue] }
        func bias(_ kind: ProjectionKind) -> Param? { [qBias, kBias, vBias, nil, nil, nil, nil][kind.rawValue] }
    }

    let layerWeights: [LayerWeights]

    /// The vocabulary projection [V, C]: the tied embedding or `lm_head.weight`.
    public var outputWeight: UnsafeMutablePointer<Float> {
        weights.value(config.tiesWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight")
    }

    /// Gradient of `outputWeight`, nil when frozen.
    public var outputWeightGradient: UnsafeMutablePointer<Float>? {
        weights.gradient(config.tiesWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight")
    }
}

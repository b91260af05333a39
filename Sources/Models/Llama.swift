// Llama-family decoder (Touvron et al. 2023; layout and parameter names follow HF `LlamaForCausalLM`):
//   x₀ = E[ids];  per layer:  h = x + W_o · Attn(RoPE(W_q n₁), RoPE(W_k n₁), W_v n₁),  n₁ = RMSNorm(x)
//                             x' = h + W_down (SiLU(W_gate n₂) ⊙ W_up n₂),          n₂ = RMSNorm(h)
//   output = RMSNorm(x_L);  logits = output · Eᵀ (tied) or · W_lmᵀ.
// Forward and backward are explicit per layer (llm.c style). The model stops at the final hidden
// state: losses go through `TokenLogProbs` with `outputWeight`, so new objectives need no kernel changes.
// B = batch, T = time, N = B·T tokens, C = hidden, F = MLP width.

import TensorCore

public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    /// Base weights, HF names (`model.layers.0.self_attn.q_proj.weight`, …).
    public let weights: ParameterStore
    public let rope: RoPETable
    /// LoRA adapters created for or loaded onto this (frozen) base, by name. Nothing reads this implicitly:
    /// every forward names the adapter it runs through (nil = the bare base, e.g. the reference policy).
    public internal(set) var adapters: [String: LoRAAdapter] = [:]

    /// Weights kept quantised (frozen; HF name → matrix). They are absent from `weights`.
    public let quantizedWeights: [String: QuantizedMatrix]

    /// A model with zero weights. `quantized` weights (a frozen, QLoRA-style base) replace the
    /// corresponding dense parameters and need `trainable == false`.
    public init(config: LlamaConfig, trainable: Bool, quantized: [String: QuantizedMatrix] = [:]) {
        precondition(
            quantized.isEmpty || !trainable, "quantised weights are frozen; a trainable model needs dense weights")
        self.config = config
        quantizedWeights = quantized
        let weights = ParameterStore(
            layout: Self.layout(config).filter { quantized[$0.0] == nil }, trainable: trainable)
        self.weights = weights
        rope = RoPETable(
            headDim: config.headDim, base: config.ropeTheta, maxPositions: config.maxPositions,
            scaling: config.ropeScaling)
        layerWeights = (0..<config.layerCount).map {
            LayerWeights(store: weights, quantized: quantized, layer: $0, config: config)
        }
    }

    /// Whether any weight is kept quantised (no dense export or merge of those weights).
    public var hasQuantizedWeights: Bool { !quantizedWeights.isEmpty }

    /// A weight by HF name: quantised if kept so, else the dense parameter.
    func matrix(_ name: String) -> WeightMatrix {
        if let q = quantizedWeights[name] { return .quantized(q) }
        return .dense(weights.value(name))
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
        let norm1, norm2: Param
        /// The seven projections (ProjectionKind order) and their gradients (dense, trainable only).
        let matrices: [WeightMatrix]
        let grads: [UnsafeMutablePointer<Float>?]
        let qBias, kBias, vBias: Param?
        init(store s: ParameterStore, quantized: [String: QuantizedMatrix], layer i: Int, config c: LlamaConfig) {
            let p = "model.layers.\(i)."
            norm1 = Param(s, p + "input_layernorm.weight")
            norm2 = Param(s, p + "post_attention_layernorm.weight")
            matrices = ProjectionKind.allCases.map { kind in
                let name = p + kind.path + ".weight"
                return quantized[name].map(WeightMatrix.quantized) ?? .dense(s.value(name))
            }
            grads = ProjectionKind.allCases.map { kind in
                let name = p + kind.path + ".weight"
                return quantized[name] == nil ? s.gradient(name) : nil
            }
            qBias = c.hasAttentionBias ? Param(s, p + "self_attn.q_proj.bias") : nil
            kBias = c.hasAttentionBias ? Param(s, p + "self_attn.k_proj.bias") : nil
            vBias = c.hasAttentionBias ? Param(s, p + "self_attn.v_proj.bias") : nil
        }

        func weight(_ kind: ProjectionKind) -> WeightMatrix { matrices[kind.rawValue] }
        func gradient(_ kind: ProjectionKind) -> UnsafeMutablePointer<Float>? { grads[kind.rawValue] }
        func bias(_ kind: ProjectionKind) -> Param? { [qBias, kBias, vBias, nil, nil, nil, nil][kind.rawValue] }
    }

    let layerWeights: [LayerWeights]

    var outputWeightName: String { config.tiesWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight" }

    /// The vocabulary projection [V, C]: the tied embedding or `lm_head.weight`.
    public var outputWeight: WeightMatrix { matrix(outputWeightName) }

    /// Gradient of `outputWeight`, nil when frozen or quantised.
    public var outputWeightGradient: UnsafeMutablePointer<Float>? {
        weights.entry(outputWeightName) == nil ? nil : weights.gradient(outputWeightName)
    }

    /// The token embedding table [V, C].
    var embedding: WeightMatrix { matrix("model.embed_tokens.weight") }

    /// out[n] = E[ids[n]] (dense or quantised table).
    func embed(_ ids: [Int32], into out: UnsafeMutablePointer<Float>) {
        let c = config.hiddenSize, v = config.vocabularySize
        if case let .dense(table) = embedding {
            ids.withUnsafeBufferPointer {
                Embedding.forward(
                    out: out, ids: $0.baseAddress!, table: table, tokens: ids.count, channels: c, vocabulary: v)
            }
            return
        }
        for (n, id) in ids.enumerated() {
            precondition(id >= 0 && Int(id) < v, "token id \(id) outside vocabulary of \(v)")
            embedding.row(Int(id), into: out + n * c, columns: c)
        }
    }
}

// LoRA adapters (Hu et al. 2021, Eq. 3: h = W₀x + ΔW x = W₀x + B A x, scaled by α/r; rsLoRA scales by
// α/√r, Kalajdzievski 2023). A frozen base holds any number of named adapters; each forward names the one
// it runs through (or none), so policy, reference (= no adapter), critic and reward model share one base.
// Parameter names are PEFT's saved keys (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`),
// so export is a copy. Init as PEFT: A ~ kaiming_uniform(a=√5) = U(±1/√in), B = 0.

import Foundation
import TensorCore

/// The seven projections of a Llama layer, in HF order.
public enum ProjectionKind: Int, CaseIterable, Codable, Sendable {
    case q, k, v, o, gate, up, down

    /// PEFT / HF module name (`q_proj`, …).
    public var moduleName: String {
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"][rawValue]
    }
    /// Path inside a layer (`self_attn.q_proj`, `mlp.gate_proj`).
    public var path: String { (rawValue < 4 ? "self_attn." : "mlp.") + moduleName }

    /// (in, out) features for a config.
    public func shape(_ c: LlamaConfig) -> (inFeatures: Int, outFeatures: Int) {
        switch self {
        case .q: (c.hiddenSize, c.qDim)
        case .k, .v: (c.hiddenSize, c.kvDim)
        case .o: (c.qDim, c.hiddenSize)
        case .gate, .up: (c.hiddenSize, c.intermediateSize)
        case .down: (c.intermediateSize, c.hiddenSize)
        }
    }
}

public struct LoRAConfig: Codable, Sendable, Equatable {
    /// Rank r of A [r, in] and B [out, r].
    public var rank: Int = 16
    /// α: the update is scaled by α/r (or α/√r with rsLoRA).
    public var alpha: Float = 32
    /// Dropout on the adapter's input during training.
    public var dropout: Float = 0.05
    /// Modules to adapt (PEFT names: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj).
    public var targetModules: [String] = ProjectionKind.allCases.map(\.moduleName)
    /// Rank-stabilised scaling α/√r.
    public var useRSLoRA: Bool = false

    public init() {}

    public var scale: Float { useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

    /// The targeted projections; throws for unknown module names.
    public func kinds() throws -> [ProjectionKind] {
        try targetModules.map { name in
            guard let k = ProjectionKind.allCases.first(where: { $0.moduleName == name }) else {
                throw ConfigError.invalid(
                    field: "lora.target_modules", value: name,
                    expected:
                        "one of \(ProjectionKind.allCases.map(\.moduleName).joined(separator: ", ")) (lm_head is not"
                        + " supported)"
                )
            }
            return k
        }
    }

    public func validate() throws {
        guard rank > 0 else { throw ConfigError.invalid(field: "lora.rank", value: "\(rank)", expected: "> 0") }
        guard alpha > 0 else { throw ConfigError.invalid(field: "lora.alpha", value: "\(alpha)", expected: "> 0") }
        guard dropout >= 0 && dropout < 1 else {
            throw ConfigError.invalid(field: "lora.dropout", value: "\(dropout)", expected: "in [0, 1)")
        }
        guard !targetModules.isEmpty else {
            throw ConfigError.invalid(
                field: "lora.target_modules", value: "[]",
                expected: "at least one module (an empty list trains nothing; lora_rank 0 is a full fine-tune)")
        }
        _ = try kinds()
    }
}

/// Errors in configuration values a user can set.
public enum ConfigError: Error, CustomStringConvertible, Equatable {
    case invalid(field: String, value: String, expected: String)
    public var description: String {
        switch self {
        case let .invalid(field, value, expected): "config field '\(field)' is \(value), expected \(expected)."
        }
    }
}

/// One named adapter: trainable A and B for each targeted projection of each layer.
public final class LoRAAdapter: @unchecked Sendable {
    public let name: String
    public let config: LoRAConfig
    public let store: ParameterStore
    let modules: [[Module?]]  // [layer][ProjectionKind.rawValue]
    let hiddenSize: Int

    struct Module {
        let a: UnsafeMutablePointer<Float>, aGrad: UnsafeMutablePointer<Float>?
        let b: UnsafeMutablePointer<Float>, bGrad: UnsafeMutablePointer<Float>?
    }

    /// PEFT key of a module's A or B.
    public static func key(layer: Int, _ kind: ProjectionKind, _ matrix: String) -> String {
        "base_model.model.model.layers.\(layer).\(kind.path).lora_\(matrix).weight"
    }

    public init(name: String, model c: LlamaConfig, config: LoRAConfig, seed: UInt64) throws {
        try config.validate()
        self.name = name
        self.config = config
        hiddenSize = c.hiddenSize
        let kinds = try config.kinds()
        var layout: [(String, [Int])] = []
        for l in 0..<c.layerCount {
            for kind in ProjectionKind.allCases where kinds.contains(kind) {
                let (i, o) = kind.shape(c)
                layout.append((Self.key(layer: l, kind, "A"), [config.rank, i]))
                layout.append((Self.key(layer: l, kind, "B"), [o, config.rank]))
            }
        }
        let store = ParameterStore(layout: layout, trainable: true)
        self.store = store
        var rng = RNG(seed: seed)
        for e in store.entries where e.name.hasSuffix("lora_A.weight") {
            let bound = 1 / Float(e.shape[1]).squareRoot()
            rng.fillUniform(store.values.pointer + e.offset, count: e.count, -bound, bound)
        }
        modules = (0..<c.layerCount).map { l in
            ProjectionKind.allCases.map { kind in
                guard kinds.contains(kind) else { return nil }
                let a = Self.key(layer: l, kind, "A"), b = Self.key(layer: l, kind, "B")
                return Module(a: store.value(a), aGrad: store.gradient(a), b: store.value(b), bGrad: store.gradient(b))
            }
        }
    }
}

extension LlamaModel {
    /// Adds a freshly initialised adapter (B = 0, so the model's outputs are unchanged).
    @discardableResult
    public func addAdapter(named name: String, config: LoRAConfig, seed: UInt64) throws -> LoRAAdapter {
        let adapter = try LoRAAdapter(name: name, model: self.config, config: config, seed: seed)
        adapters[name] = adapter
        return adapter
    }

    /// Refuses an adapter built for a model of another shape (a programming error: adapters loaded from
    /// files are checked against the model with errors naming the tensor).
    func checkAdapter(_ adapter: LoRAAdapter?) {
        guard let adapter else { return }
        precondition(
            adapter.modules.count == config.layerCount && adapter.hiddenSize == config.hiddenSize,
            "adapter \(adapter.name) was built for a model of another shape")
    }

    /// W₀ += s·B A for every module of the adapter (dense base only). A forward through the merged
    /// weights must then name no adapter, since they already include it.
    public func merge(adapter name: String) { applyMerge(name, sign: 1) }

    /// Undoes `merge` (W₀ −= s·B A).
    public func unmerge(adapter name: String) { applyMerge(name, sign: -1) }

    private func applyMerge(_ name: String, sign: Float) {
        guard let a = adapters[name] else { preconditionFailure("no adapter named \(name)") }
        precondition(
            !hasQuantizedWeights, "merging needs a dense base; load the model without keeping weights quantised")
        for l in 0..<config.layerCount {
            for kind in ProjectionKind.allCases {
                guard let m = a.modules[l][kind.rawValue] else { continue }
                let (i, o) = kind.shape(config)
                guard case let .dense(w) = layerWeights[l].weight(kind) else { continue }
                MatMul.gemm(
                    UnsafeMutablePointer(mutating: w), m.b, m.a, m: o, n: i, k: a.config.rank,
                    alpha: sign * a.config.scale, beta: 1)
            }
        }
    }
}

// Hyper-parameters of a Llama-family decoder (SmolLM2, Llama 2/3, Qwen2, Mistral), read from a
// Hugging Face `config.json` or from GGUF `llama.*` / `qwen2.*` metadata.

import Foundation
import ModelFormats
import TensorCore

public struct LlamaConfig: Codable, Sendable, Equatable {
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var rmsNormEpsilon: Float
    public var ropeTheta: Double
    public var ropeScaling: RoPEScaling?
    public var maxPositions: Int
    public var tiesWordEmbeddings: Bool
    /// Qwen2 has biases on the q, k and v projections.
    public var hasAttentionBias: Bool
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]

    public init(
        vocabularySize: Int, hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int,
        kvHeadCount: Int, headDim: Int? = nil, rmsNormEpsilon: Float = 1e-5, ropeTheta: Double = 10_000,
        ropeScaling: RoPEScaling? = nil, maxPositions: Int = 2048, tiesWordEmbeddings: Bool = true,
        hasAttentionBias: Bool = false, bosTokenID: Int? = nil, eosTokenIDs: [Int] = []
    ) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim ?? hiddenSize / headCount
        self.rmsNormEpsilon = rmsNormEpsilon
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.maxPositions = maxPositions
        self.tiesWordEmbeddings = tiesWordEmbeddings
        self.hasAttentionBias = hasAttentionBias
        self.bosTokenID = bosTokenID
        self.eosTokenIDs = eosTokenIDs
    }

    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }

    /// Checks the relations the kernels rely on.
    public func validate(source: String) throws(ModelError) {
        func check(_ ok: Bool, _ field: String, _ value: Any, _ expected: String) throws(ModelError) {
            if !ok { throw .invalidConfig(file: source, field: field, value: "\(value)", expected: expected) }
        }
        // Upper bounds far above any model this toolkit runs keep every size product (vocab × hidden, heads ×
        // head_dim, positions × head_dim for the RoPE table) from overflowing or asking for absurd memory.
        try check(vocabularySize > 0 && vocabularySize <= 1 << 24, "vocab_size", vocabularySize, "1...16777216")
        try check(hiddenSize > 0 && hiddenSize <= 1 << 16, "hidden_size", hiddenSize, "1...65536")
        try check(
            intermediateSize > 0 && intermediateSize <= 1 << 18, "intermediate_size", intermediateSize, "1...262144")
        try check(layerCount > 0 && layerCount <= 1024, "num_hidden_layers", layerCount, "1...1024")
        try check(headCount > 0 && headCount <= 1024, "num_attention_heads", headCount, "1...1024")
        try check(
            kvHeadCount > 0 && headCount % kvHeadCount == 0, "num_key_value_heads", kvHeadCount,
            "a divisor of num_attention_heads (\(headCount))")
        try check(headDim > 0 && headDim % 2 == 0 && headDim <= 1024, "head_dim", headDim, "an even number in 2...1024")
        try check(maxPositions > 0 && maxPositions <= 1 << 20, "max_position_embeddings", maxPositions, "1...1048576")
        try check(
            maxPositions * headDim <= 1 << 26, "max_position_embeddings", maxPositions,
            "at most \((1 << 26) / headDim) with head_dim \(headDim) (the RoPE table's size)")
        try check(rmsNormEpsilon > 0, "rms_norm_eps", rmsNormEpsilon, "> 0")
        try check(ropeTheta > 0, "rope_theta", ropeTheta, "> 0")
    }
}

extension LlamaConfig {
    /// Architectures this reader accepts (HF `architectures` / `model_type`, GGUF `general.architecture`).
    public static let supportedArchitectures = ["llama", "mistral", "qwen2", "smollm"]

    /// Reads a Hugging Face `config.json`.
    public init(huggingFaceConfig url: URL) throws {
        let data: Data
        do { data = try FileContents.read(url) } catch {
            throw ModelError.unreadable(file: url.path, reason: error.reason)
        }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError.invalidConfig(
                file: url.path, field: "(root)", value: "not a JSON object", expected: "a JSON object")
        }
        let file = url.path
        let modelType = (json["model_type"] as? String) ?? "llama"
        guard Self.supportedArchitectures.contains(modelType) else {
            throw ModelError.unsupportedArchitecture(
                file: file, found: modelType, supported: Self.supportedArchitectures)
        }
        func int(_ key: String, default d: Int? = nil) throws -> Int {
            if let v = json[key] as? Int { return v }
            if let d { return d }
            throw ModelError.invalidConfig(
                file: file, field: key, value: "\(json[key] ?? "missing")", expected: "an integer")
        }
        func double(_ key: String, default d: Double) -> Double {
            (json[key] as? Double) ?? (json[key] as? Int).map(Double.init) ?? d
        }
        let heads = try int("num_attention_heads")
        let hidden = try int("hidden_size")
        let rope = json["rope_parameters"] as? [String: Any] ?? json["rope_scaling"] as? [String: Any]
        let theta = (rope?["rope_theta"] as? Double) ?? double("rope_theta", default: 10_000)
        var scaling: RoPEScaling?
        if let rope, let type = (rope["rope_type"] ?? rope["type"]) as? String, type != "default" {
            guard type == "llama3" else {
                throw ModelError.invalidConfig(
                    file: file, field: "rope_scaling.rope_type", value: type, expected: "default or llama3")
            }
            scaling = RoPEScaling(
                factor: (rope["factor"] as? Double) ?? 8,
                lowFrequencyFactor: (rope["low_freq_factor"] as? Double) ?? 1,
                highFrequencyFactor: (rope["high_freq_factor"] as? Double) ?? 4,
                originalMaxPositions: (rope["original_max_position_embeddings"] as? Int) ?? 8192)
        }
        func ids(_ any: Any?) -> [Int] { (any as? [Int]) ?? ((any as? Int).map { [$0] } ?? []) }
        var eos = ids(json["eos_token_id"])
        // generation_config.json may list more stop ids (Llama 3: <|eot_id|> besides <|end_of_text|>).
        let generation = url.deletingLastPathComponent().appendingPathComponent("generation_config.json")
        if let data = try? FileContents.read(generation),
            let g = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        {
            for id in ids(g["eos_token_id"]) where !eos.contains(id) { eos.append(id) }
        }
        self.init(
            vocabularySize: try int("vocab_size"), hiddenSize: hidden,
            intermediateSize: try int("intermediate_size"), layerCount: try int("num_hidden_layers"),
            headCount: heads, kvHeadCount: try int("num_key_value_heads", default: heads),
            headDim: json["head_dim"] as? Int ?? hidden / max(heads, 1),
            rmsNormEpsilon: Float(double("rms_norm_eps", default: 1e-6)), ropeTheta: theta, ropeScaling: scaling,
            maxPositions: try int("max_position_embeddings", default: 2048),
            tiesWordEmbeddings: (json["tie_word_embeddings"] as? Bool) ?? false,
            hasAttentionBias: (json["attention_bias"] as? Bool) ?? (modelType == "qwen2"),
            bosTokenID: json["bos_token_id"] as? Int, eosTokenIDs: eos)
        try validate(source: file)
    }
}

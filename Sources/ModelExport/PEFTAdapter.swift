// LoRA adapters in Hugging Face PEFT's on-disk format (`PeftModel.save_pretrained` /
// `PeftModel.from_pretrained`, peft/utils/save_and_load.py): `adapter_config.json` is the
// `LoraConfig` dataclass as JSON (keys sorted, 2-space indent) and `adapter_model.safetensors`
// holds lora_A [r, in] and lora_B [out, r] per adapted projection under keys such as
// `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` (adapter name removed).
// `LoRAAdapter` already names its parameters that way, so saving is a copy.

import Foundation
import ModelFormats
import Models
import TensorCore

/// Saves and loads LoRA adapters as PEFT does.
///
/// ```swift
/// try PEFTAdapter.save(model.adapters["policy"]!, baseModel: "HuggingFaceTB/SmolLM2-135M-Instruct", to: dir)
/// let adapter = try PEFTAdapter.load(from: dir, into: model, name: "policy")
/// let out = model.generate(prompts: prompts, adapter: adapter, options: options)
/// ```
///
/// See Also: `HFCheckpoint.saveMerged(model:adapter:tokenizer:chatTemplate:dtype:to:overwrite:)`,
/// Hu et al. 2021 (LoRA), Kalajdzievski 2023 (rsLoRA).
public enum PEFTAdapter {
    public static let configFileName = "adapter_config.json"
    public static let weightsFileName = "adapter_model.safetensors"

    /// The parts of `adapter_config.json` this package uses.
    public struct Configuration: Sendable, Equatable {
        public var lora: LoRAConfig
        /// `base_model_name_or_path`, if recorded.
        public var baseModel: String?
        /// `modules_to_save` (fully trained modules beside the adapter, e.g. a reward model's `score`),
        /// without repeats.
        public var modulesToSave: [String] = []
    }

    /// Prefix of a saved module's tensors (`base_model.model.score.weight`): PEFT stores
    /// `modules_to_save` under the model's own names with the adapter name removed.
    public static let moduleKeyPrefix = "base_model.model."

    /// Writes `adapter_config.json` and `adapter_model.safetensors` (F32) into `directory`
    /// atomically: both files are built in a hidden staging directory and swapped in at once.
    ///
    /// - Parameters:
    ///   - adapter: The adapter to save (its `store` names are PEFT's keys).
    ///   - baseModel: Recorded as `base_model_name_or_path` (a hub id or a path).
    ///   - directory: Created if needed. A non-empty directory holding other files is refused
    ///     unless `overwrite`.
    ///   - heads: Scalar heads trained with the adapter, saved as PEFT's `modules_to_save`.
    public static func save(
        _ adapter: LoRAAdapter, heads: [ScalarHead] = [], baseModel: String, to directory: URL,
        overwrite: Bool = false
    ) throws {
        let tensors =
            adapter.store.tensors(prefix: "")
            + heads.flatMap { $0.store.tensors(prefix: moduleKeyPrefix) }
        try ExportDestination.writeDirectory(
            directory, ownedNames: [configFileName, weightsFileName],
            overwrite: overwrite
        ) { staging in
            try ExportDestination.writeJSON(
                configJSON(adapter.config, baseModel: baseModel, modulesToSave: heads.map(\.name)),
                to: staging.appendingPathComponent(configFileName))
            try SafeTensorsWriter.write(
                tensors: tensors, metadata: ["format": "pt"],
                to: staging.appendingPathComponent(weightsFileName))
        }
    }

    /// The bytes of `adapter_config.json` for `config` (trainer checkpoints write it beside their
    /// `adapter_model.safetensors`, so a LoRA checkpoint directory is itself a PEFT adapter).
    public static func configurationData(
        _ config: LoRAConfig, baseModel: String, modulesToSave: [String] = []
    ) -> Data {
        Data(configJSON(config, baseModel: baseModel, modulesToSave: modulesToSave).serialized().utf8)
    }

    /// `LoraConfig` as PEFT serialises it (keys sorted). Fields that PEFT versions from 0.10 on
    /// all accept; newer optional fields are left to their defaults.
    /// A reward model's `score` head makes it a sequence-classification adapter (`SEQ_CLS`).
    static func configJSON(_ c: LoRAConfig, baseModel: String, modulesToSave: [String] = []) -> JSON {
        let alpha: JSON =
            c.alpha == c.alpha.rounded() && abs(c.alpha) < 1e9
            ? .int(Int(c.alpha)) : .float(c.alpha)
        let fields: [(String, JSON)] = [
            ("alpha_pattern", .object([])), ("auto_mapping", .null),
            ("base_model_name_or_path", .string(baseModel)),
            ("bias", .string("none")), ("fan_in_fan_out", .bool(false)),
            ("inference_mode", .bool(true)),
            ("init_lora_weights", .bool(true)), ("layer_replication", .null),
            ("layers_pattern", .null),
            ("layers_to_transform", .null), ("loftq_config", .object([])), ("lora_alpha", alpha),
            ("lora_dropout", .float(c.dropout)), ("megatron_config", .null),
            ("megatron_core", .string("megatron.core")),
            (
                "modules_to_save",
                modulesToSave.isEmpty ? .null : .array(modulesToSave.map { .string($0) })
            ), ("peft_type", .string("LORA")), ("r", .int(c.rank)),
            ("rank_pattern", .object([])),
            ("revision", .null), ("target_modules", .array(c.targetModules.map { .string($0) })),
            ("task_type", .string(modulesToSave.contains("score") ? "SEQ_CLS" : "CAUSAL_LM")),
            ("use_dora", .bool(false)),
            ("use_rslora", .bool(c.useRSLoRA)),
        ]
        return .object(fields.sorted { $0.0 < $1.0 })
    }

    /// Reads and validates `adapter_config.json`.
    ///
    /// - Throws: `ExportError` for a missing or unparsable file, fields of the wrong type
    ///   (`r` must be a positive integer, `lora_alpha` a positive number), unknown target
    ///   modules, and PEFT features this package does not implement (DoRA, biases, rank or alpha
    ///   patterns, layer subsets).
    public static func readConfiguration(from directory: URL) throws -> Configuration {
        let url = directory.appendingPathComponent(configFileName)
        let file = url.path
        guard FileManager.default.fileExists(atPath: file) else {
            throw ExportError.missingFile(
                path: file,
                hint:
                    "Hint: a PEFT adapter directory holds \(configFileName) and \(weightsFileName)."
            )
        }
        let json: [String: JSONValue]
        do {
            let data = try FileContents.read(url)
            json = try JSONDecoder().decode([String: JSONValue].self, from: data)
        } catch {
            throw ExportError.unreadable(path: file, reason: "not a JSON object: \(error)")
        }
        func invalid(_ field: String, _ expected: String) -> ExportError {
            .invalidField(
                file: file, field: field, found: json[field]?.summary ?? "missing",
                expected: expected)
        }
        guard json["peft_type"] == .string("LORA") else { throw invalid("peft_type", "\"LORA\"") }
        var lora = LoRAConfig()
        guard case .int(let rank)? = json["r"], rank > 0 else {
            throw invalid("r", "a positive integer")
        }
        lora.rank = rank
        switch json["lora_alpha"] {
        case .int(let v)? where v > 0: lora.alpha = Float(v)
        case .double(let v)? where v > 0: lora.alpha = Float(v)
        default: throw invalid("lora_alpha", "a positive number")
        }
        switch json["lora_dropout"] {
        case nil, .null?: lora.dropout = 0
        case .int(let v)?: lora.dropout = Float(v)
        case .double(let v)?: lora.dropout = Float(v)
        default: throw invalid("lora_dropout", "a number in [0, 1)")
        }
        guard lora.dropout >= 0 && lora.dropout < 1 else {
            throw invalid("lora_dropout", "a number in [0, 1)")
        }
        switch json["use_rslora"] {
        case nil, .null?: lora.useRSLoRA = false
        case .bool(let v)?: lora.useRSLoRA = v
        default: throw invalid("use_rslora", "true or false")
        }
        lora.targetModules = try targetModules(json["target_modules"], file: file)
        try rejectUnsupported(json, file: file)
        var baseModel: String?
        if case .string(let s)? = json["base_model_name_or_path"] { baseModel = s }
        var modules: [String] = []
        switch json["modules_to_save"] {
        case nil, .null?: break
        case .array(let items)?:
            for item in items {
                guard case .string(let s) = item else { throw invalid("modules_to_save", "module names") }
                if !modules.contains(s) { modules.append(s) }
            }
        default: throw invalid("modules_to_save", "a list of module names or null")
        }
        return Configuration(lora: lora, baseModel: baseModel, modulesToSave: modules)
    }

    private static func targetModules(_ value: JSONValue?, file: String) throws -> [String] {
        let supported = ProjectionKind.allCases.map(\.moduleName)
        let names: [String]
        switch value {
        case .string("all-linear")?: return supported
        case .array(let items)?:
            names = try items.map { item in
                guard case .string(let s) = item else {
                    throw ExportError.invalidField(
                        file: file, field: "target_modules", found: item.summary,
                        expected: "module names")
                }
                return s
            }
        default:
            throw ExportError.invalidField(
                file: file, field: "target_modules", found: value?.summary ?? "missing",
                expected:
                    "a list of module names or \"all-linear\" (regular expressions are not supported)"
            )
        }
        for name in names where !supported.contains(name) {
            throw ExportError.unknownTargetModule(file: file, module: name, supported: supported)
        }
        return names
    }

    private static func rejectUnsupported(_ json: [String: JSONValue], file: String) throws {
        func isSet(_ key: String) -> Bool {
            switch json[key] {
            case nil, .null?, .bool(false)?: false
            case .object(let o)?: !o.isEmpty
            case .array(let a)?: !a.isEmpty
            default: true
            }
        }
        let unsupported: [(String, String)] = [
            ("use_dora", "DoRA"), ("rank_pattern", "per-module ranks"),
            ("alpha_pattern", "per-module alphas"),
            ("layers_to_transform", "adapting a subset of layers"),
            ("fan_in_fan_out", "transposed (Conv1D) weights"),
            ("layer_replication", "layer replication"),
            ("lora_bias", "LoRA biases"),
        ]
        for (key, feature) in unsupported where isSet(key) {
            throw ExportError.unsupported(
                file: file, feature: "\(key) (\(feature))",
                hint:
                    "Hint: only plain LoRA / rsLoRA adapters of the 7 Llama projections load here.")
        }
        if let bias = json["bias"], bias != .string("none"), bias != .null {
            throw ExportError.unsupported(
                file: file, feature: "bias = \(bias.summary)",
                hint: "Hint: only bias = \"none\" is supported.")
        }
    }
}

extension ParameterStore {
    /// The store's tensors (values, or another buffer of the same layout such as AdamW moments) for
    /// `SafeTensorsWriter`, each name prefixed.
    public func tensors(
        prefix: String, buffer: FloatBuffer? = nil, dtype: SafeTensorsDType = .f32
    ) -> [SafeTensorsWriter.Tensor] {
        let base = (buffer ?? values).pointer
        return entries.map { e in
            SafeTensorsWriter.Tensor(
                name: prefix + e.name, shape: e.shape, dtype: dtype,
                pointer: UnsafePointer(base + e.offset))
        }
    }
}

// Loading a PEFT LoRA adapter into a LlamaModel: the config is validated first, then every
// expected lora_A / lora_B key is checked for presence and shape against the model's config
// (so an adapter trained for another base model fails with the key and both shapes), and only
// then is the adapter registered and its values copied (F32, F16 or BF16 on disk).

import Foundation
import ModelFormats
import Models
import TensorCore

extension PEFTAdapter {
    /// Reads a PEFT adapter directory and registers it on `model` as `name` (replacing an
    /// adapter of that name). Forwards use it when they name it (`adapter:`).
    ///
    /// - Throws: `ExportError` for missing files, invalid config fields, unknown target modules,
    ///   missing, extra or mis-shaped tensors (naming the key and both shapes, with a hint that the
    ///   adapter was trained for a different base model) and unsupported element types; the model
    ///   is unchanged when it throws. `ModelFormatError` for a corrupt safetensors file.
    public static func load(from directory: URL, into model: LlamaModel, name: String) throws
        -> LoRAAdapter
    {
        let configuration = try readConfiguration(from: directory)
        let lora = configuration.lora
        let url = directory.appendingPathComponent(weightsFileName)
        guard FileManager.default.fileExists(atPath: url.path) else {
            let bin = directory.appendingPathComponent("adapter_model.bin")
            throw ExportError.missingFile(
                path: url.path,
                hint: FileManager.default.fileExists(atPath: bin.path)
                    ? "Hint: only safetensors adapters are read; re-save with safe_serialization=True."
                    : "Hint: a PEFT adapter directory holds \(configFileName) and \(weightsFileName)."
            )
        }
        let file = try SafeTensorsFile(contentsOf: url)
        let heads = headLayout(configuration.modulesToSave, in: file, hiddenSize: model.config.hiddenSize)
        try check(file, expected: layout(lora, model: model.config) + heads, model: model.config)
        do { try lora.validate() } catch {
            throw ExportError.invalidField(
                file: directory.appendingPathComponent(configFileName).path, field: "lora",
                found: "\(error)", expected: "a valid LoRA configuration")
        }
        let adapter = try model.addAdapter(named: name, config: lora, seed: 0)
        for e in adapter.store.entries {
            try file.copyFloats(
                e.name, into: adapter.store.values.pointer + e.offset, count: e.count)
        }
        return adapter
    }

    /// Reads the scalar heads saved beside the adapter in `directory` (`modules_to_save` whose tensors
    /// are in the file: a reward model's `score`; names PEFT lists without tensors are skipped).
    ///
    /// - Throws: `ExportError` when a saved module is not a scalar head [1, hidden] (+ bias [1]).
    public static func loadHeads(from directory: URL, hiddenSize: Int) throws -> [ScalarHead] {
        let configuration = try readConfiguration(from: directory)
        guard !configuration.modulesToSave.isEmpty else { return [] }
        let file = try SafeTensorsFile(contentsOf: directory.appendingPathComponent(weightsFileName))
        let expected = headLayout(configuration.modulesToSave, in: file, hiddenSize: hiddenSize)
        for (name, shape) in expected {
            let info = try file.info(name)
            guard info.shape == shape else {
                throw ExportError.shapeMismatch(
                    file: file.url.path, name: name, expected: shape, found: info.shape,
                    hint: "Hint: only scalar heads (one output, e.g. a reward model's score) load here.")
            }
        }
        return try configuration.modulesToSave.compactMap { module -> ScalarHead? in
            let prefix = moduleKeyPrefix + module
            guard file.contains(prefix + ".weight") else { return nil }
            let head = ScalarHead(
                name: module, hiddenSize: hiddenSize, bias: file.contains(prefix + ".bias"),
                trainable: false, seed: 0)
            for e in head.store.entries {
                try file.copyFloats(
                    moduleKeyPrefix + e.name, into: head.store.values.pointer + e.offset,
                    count: e.count)
            }
            return head
        }
    }

    /// Keys and shapes of the scalar heads among `modules` that `file` holds.
    static func headLayout(_ modules: [String], in file: SafeTensorsFile, hiddenSize: Int)
        -> [(name: String, shape: [Int])]
    {
        modules.flatMap { module -> [(name: String, shape: [Int])] in
            let prefix = moduleKeyPrefix + module
            guard file.contains(prefix + ".weight") else { return [] }
            return [(prefix + ".weight", [1, hiddenSize])]
                + (file.contains(prefix + ".bias") ? [(prefix + ".bias", [1])] : [])
        }
    }

    /// PEFT keys and shapes of an adapter with config `lora` on a model with config `c`.
    static func layout(_ lora: LoRAConfig, model c: LlamaConfig) -> [(name: String, shape: [Int])] {
        let kinds = ProjectionKind.allCases.filter { lora.targetModules.contains($0.moduleName) }
        var out: [(String, [Int])] = []
        for layer in 0..<c.layerCount {
            for kind in kinds {
                let (i, o) = kind.shape(c)
                out.append((LoRAAdapter.key(layer: layer, kind, "A"), [lora.rank, i]))
                out.append((LoRAAdapter.key(layer: layer, kind, "B"), [o, lora.rank]))
            }
        }
        return out
    }

    private static func check(
        _ file: SafeTensorsFile, expected: [(name: String, shape: [Int])], model c: LlamaConfig
    ) throws {
        let path = file.url.path
        let modelShape =
            "this model has \(c.layerCount) layers, hidden size \(c.hiddenSize), \(c.headCount)×\(c.headDim) "
            + "query and \(c.kvHeadCount)×\(c.headDim) key/value features, MLP width \(c.intermediateSize)"
        let hint =
            "Hint: the adapter was probably trained for a different base model (\(modelShape))."
        let names = Set(expected.map(\.name))
        for name in file.names.sorted() where !names.contains(name) {
            throw ExportError.unexpectedTensor(
                file: path, name: name,
                hint: "\(hint) Or target_modules in \(configFileName) does not list its module.")
        }
        for (name, shape) in expected {
            guard file.contains(name) else {
                throw ExportError.missingTensor(
                    file: path, name: name,
                    hint:
                        "\(hint) Or target_modules in \(configFileName) lists a module the file lacks."
                )
            }
            let info = try file.info(name)
            guard info.shape == shape else {
                // A is [r, in] and B is [out, r]: only the rank side differing means r is wrong.
                let isA = name.hasSuffix("lora_A.weight")
                let onlyRankDiffers =
                    info.shape.count == 2
                    && (isA ? info.shape[1] == shape[1] : info.shape[0] == shape[0])
                let why =
                    onlyRankDiffers
                    ? "Hint: r = \(shape[isA ? 0 : 1]) in \(configFileName) does not match the file."
                    : hint
                throw ExportError.shapeMismatch(
                    file: path, name: name, expected: shape, found: info.shape, hint: why)
            }
            guard [.f32, .f16, .bf16].contains(info.dtype) else {
                throw ExportError.unsupportedDType(
                    file: path, tensor: name, dtype: info.dtype.rawValue,
                    supported: "F32, F16, BF16")
            }
        }
    }
}

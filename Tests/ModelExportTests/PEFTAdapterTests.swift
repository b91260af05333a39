// PEFT adapters on the tiny Llama: save → load is bit-identical, adapter_config.json and the
// safetensors keys are exactly PEFT's, and bad adapters fail with the file, key, shapes and a hint.

import Foundation
import ModelFormats
import Models
import TensorCore
import Testing

@testable import ModelExport

@Suite struct PEFTAdapterTests {
    static func adaptedModel() throws -> (LlamaModel, LoRAAdapter) {
        let model = try Tiny.model()
        var config = LoRAConfig()
        config.rank = 4
        config.alpha = 8
        config.dropout = 0.1
        config.targetModules = ["q_proj", "v_proj", "down_proj"]
        config.useRSLoRA = true
        let adapter = try model.addAdapter(named: "policy", config: config, seed: 11)
        randomizeB(adapter, seed: 12)
        return (model, adapter)
    }

    static func saved() throws -> (URL, LoRAAdapter) {
        let (_, adapter) = try adaptedModel()
        let dir = try temporaryDirectory().appendingPathComponent("adapter")
        try PEFTAdapter.save(adapter, baseModel: "tiny-llama", to: dir)
        return (dir, adapter)
    }

    @Test func saveThenLoadIsBitIdentical() throws {
        let (source, adapter) = try Self.adaptedModel()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try PEFTAdapter.save(adapter, baseModel: "tiny-llama", to: dir)
        #expect(
            Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)) == [
                "adapter_config.json", "adapter_model.safetensors",
            ])

        let target = try Tiny.model()
        let restored = try PEFTAdapter.load(from: dir, into: target, name: "restored")
        #expect(target.adapters["restored"] === restored)
        #expect(restored.config == adapter.config)
        #expect(restored.store.entries == adapter.store.entries)
        #expect(differingParameters(restored.store, adapter.store) == [])

        expectBitIdentical(
            logits(target, Tiny.prompt, adapter: restored), logits(source, Tiny.prompt, adapter: adapter),
            "logits")
    }

    @Test func configAndKeysAreExactlyPEFTs() throws {
        let (dir, adapter) = try Self.saved()
        defer { try? FileManager.default.removeItem(at: dir.deletingLastPathComponent()) }
        let text = try String(
            contentsOf: dir.appendingPathComponent("adapter_config.json"), encoding: .utf8)
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(
            json["peft_type"] as? String == "LORA" && json["task_type"] as? String == "CAUSAL_LM")
        #expect(
            json["r"] as? Int == 4 && json["lora_alpha"] as? Int == 8
                && text.contains("\"lora_alpha\": 8,"))
        #expect(
            text.contains("\"lora_dropout\": 0.1,"),
            "Float32 0.1 is written shortest, as Python would")
        #expect(json["target_modules"] as? [String] == ["q_proj", "v_proj", "down_proj"])
        #expect(json["use_rslora"] as? Bool == true && json["use_dora"] as? Bool == false)
        #expect(json["bias"] as? String == "none" && json["fan_in_fan_out"] as? Bool == false)
        #expect(
            json["inference_mode"] as? Bool == true && json["init_lora_weights"] as? Bool == true)
        #expect(json["base_model_name_or_path"] as? String == "tiny-llama")
        for key in ["modules_to_save", "layers_to_transform", "layers_pattern", "revision"] {
            #expect(json[key] is NSNull, "\(key) is null")
        }
        #expect((json["rank_pattern"] as? [String: Any])?.isEmpty == true)
        #expect((json["alpha_pattern"] as? [String: Any])?.isEmpty == true)
        let keyOrder = text.split(separator: "\n").filter { $0.hasPrefix("  \"") }.map {
            $0.split(separator: "\"")[1]
        }
        #expect(
            keyOrder == keyOrder.sorted() && keyOrder.count == json.count,
            "top-level keys sorted, as PEFT's to_json_string")

        let file = try SafeTensorsFile(
            contentsOf: dir.appendingPathComponent("adapter_model.safetensors"))
        #expect(file.metadata == ["format": "pt"])
        var expected: Set<String> = []
        for layer in 0..<2 {
            for path in ["self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"] {
                for m in ["A", "B"] {
                    expected.insert(
                        "base_model.model.model.layers.\(layer).\(path).lora_\(m).weight")
                }
            }
        }
        #expect(Set(file.names) == expected)
        let q = try file.info("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
        #expect(q.dtype == .f32 && q.shape == [4, 64])
        #expect(
            try file.info("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").shape == [
                64, 4,
            ])
        #expect(
            try file.floats("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight")
                == parameters(adapter.store)[
                    "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"])
    }

    /// Rewrites adapter_config.json with `edit` applied to its JSON object.
    static func editConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("adapter_config.json")
        var json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    static func loadError(_ dir: URL, into model: LlamaModel? = nil) throws -> ExportError {
        let model = try model ?? Tiny.model()
        let error = try #require(throws: ExportError.self) {
            try PEFTAdapter.load(from: dir, into: model, name: "x")
        }
        #expect(model.adapters.isEmpty, "a failed load registers nothing")
        return error
    }

    @Test func missingFilesAreNamed() throws {
        let (dir, _) = try Self.saved()
        defer { try? FileManager.default.removeItem(at: dir.deletingLastPathComponent()) }
        try FileManager.default.removeItem(
            at: dir.appendingPathComponent("adapter_model.safetensors"))
        let noWeights = try Self.loadError(dir)
        #expect(
            noWeights
                == .missingFile(
                    path: dir.appendingPathComponent("adapter_model.safetensors").path,
                    hint:
                        "Hint: a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors."
                ))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("adapter_config.json"))
        #expect("\(try Self.loadError(dir))".contains("adapter_config.json: file not found"))
    }

    @Test(arguments: [
        ("\"16\"", "r"), ("2.5", "r"), ("true", "r"), ("\"8\"", "lora_alpha"),
        ("false", "lora_alpha"),
    ])
    func wrongFieldTypes(value: String, field: String) throws {
        let (dir, _) = try Self.saved()
        defer { try? FileManager.default.removeItem(at: dir.deletingLastPathComponent()) }
        let url = dir.appendingPathComponent("adapter_config.json")
        var text = try String(contentsOf: url, encoding: .utf8)
        let line = try #require(
            text.split(separator: "\n").first { $0.hasPrefix("  \"\(field)\":") })
        text = text.replacingOccurrences(of: line, with: "  \"\(field)\": \(value),")
        try text.write(to: url, atomically: true, encoding: .utf8)
        let error = try Self.loadError(dir)
        guard case .invalidField(let file, let f, _, let expected) = error else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(file == url.path && f == field)
        #expect(expected == (field == "r" ? "a positive integer" : "a positive number"))
    }

    @Test func adapterForAnotherBaseModelNamesKeyShapesAndHint() throws {
        let (dir, _) = try Self.saved()
        defer { try? FileManager.default.removeItem(at: dir.deletingLastPathComponent()) }
        var other = try Tiny.model().config
        other.hiddenSize = 32
        other.headDim = 8
        let error = try Self.loadError(dir, into: LlamaModel(config: other, trainable: false))
        let key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
        guard case .shapeMismatch(_, let name, let expected, let found, _) = error else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(name == key && expected == [4, 32] && found == [4, 64])
        let text = "\(error)"
        #expect(
            text.contains("[4, 64]") && text.contains("[4, 32]")
                && text.contains("different base model"))

        var shallow = try Tiny.model().config
        shallow.layerCount = 1
        let extra = try Self.loadError(dir, into: LlamaModel(config: shallow, trainable: false))
        #expect("\(extra)".contains("layers.1.") && "\(extra)".contains("different base model"))
    }

    @Test func rankThatDisagreesWithTheFileIsReported() throws {
        let (dir, _) = try Self.saved()
        defer { try? FileManager.default.removeItem(at: dir.deletingLastPathComponent()) }
        try Self.editConfig(dir) { $0["r"] = 8 }
        let error = try Self.loadError(dir)
        #expect("\(error)".contains("r = 8 in adapter_config.json does not match the file"))
    }

    @Test func unknownTargetModulesAndUnsupportedFeaturesAreRefused() throws {
        let (dir, _) = try Self.saved()
        defer { try? FileManager.default.removeItem(at: dir.deletingLastPathComponent()) }
        try Self.editConfig(dir) { $0["target_modules"] = ["q_proj", "lm_head"] }
        let path = dir.appendingPathComponent("adapter_config.json").path
        #expect(
            try Self.loadError(dir)
                == .unknownTargetModule(
                    file: path, module: "lm_head",
                    supported: [
                        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                    ]))
        try Self.editConfig(dir) {
            $0["target_modules"] = ["q_proj", "v_proj", "down_proj"]
            $0["use_dora"] = true
        }
        #expect("\(try Self.loadError(dir))".contains("use_dora (DoRA) is not supported"))
    }

    @Test func existingForeignDirectoryIsNotOverwritten() throws {
        let (_, adapter) = try Self.adaptedModel()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("keep".utf8).write(to: dir.appendingPathComponent("notes.txt"))
        #expect(
            throws: ExportError.destinationNotEmpty(
                path: dir.standardizedFileURL.path, unexpected: ["notes.txt"])
        ) {
            try PEFTAdapter.save(adapter, baseModel: "tiny-llama", to: dir)
        }
        #expect(
            try String(contentsOf: dir.appendingPathComponent("notes.txt"), encoding: .utf8)
                == "keep")
        try PEFTAdapter.save(adapter, baseModel: "tiny-llama", to: dir, overwrite: true)
        #expect(
            !FileManager.default.fileExists(atPath: dir.appendingPathComponent("notes.txt").path))
        try PEFTAdapter.save(adapter, baseModel: "tiny-llama", to: dir)  // a previous export is replaced
    }
}

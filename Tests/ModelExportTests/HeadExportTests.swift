// Scalar heads leave with their adapter (PEFT `modules_to_save`, keys as PEFT saves them) or with the
// full weights (an HF `…ForSequenceClassification` directory), and come back through the one loading
// path; `ModelLoader` resolves PEFT directories, training output directories and checkpoints.

import Foundation
import ModelFormats
import Models
import TensorCore
import Testing
import _TestSupport

@testable import ModelExport

@Suite struct HeadExportTests {
    static var config: LlamaConfig {
        var c = RandomModel.config
        c.vocabularySize = 256  // the byte tokenizer's
        return c
    }

    static func head(_ c: LlamaConfig, bias: Bool = false) -> ScalarHead {
        ScalarHead(name: "score", hiddenSize: c.hiddenSize, bias: bias, seed: 9, std: 0.5)
    }

    @Test func adapterWithScoreHeadRoundTripsAsPEFT() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = RandomModel.make(config: Self.config)
        let adapter = try RandomModel.adapter(on: m, name: "rm", seed: 2)
        let head = Self.head(m.config, bias: true)
        try PEFTAdapter.save(adapter, heads: [head], baseModel: "random", to: dir)
        let config =
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("adapter_config.json")))
            as! [String: Any]
        #expect(config["modules_to_save"] as? [String] == ["score"] && config["task_type"] as? String == "SEQ_CLS")
        let file = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("adapter_model.safetensors"))
        #expect(file.contains("base_model.model.score.weight") && file.contains("base_model.model.score.bias"))

        let source = RandomModel.make(config: Self.config)
        let loaded = try ModelLoader.load(
            adapter: dir,
            onto: LoadedModel(
                model: source, tokenizer: try Tiny.byteTokenizer(),
                chatTemplate: nil, source: dir), name: "rm")
        #expect(loaded.adapter?.store.values.array == adapter.store.values.array)
        #expect(loaded.heads["score"]?.store.values.array == head.store.values.array)
        #expect(loaded.heads["score"]?.hasBias == true)
    }

    @Test func fullModelWithScoreHeadIsASequenceClassificationDirectory() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = RandomModel.make(config: Self.config)
        let head = Self.head(m.config)
        try HFCheckpoint.save(model: m, tokenizer: try Tiny.byteTokenizer(), heads: [head], to: dir)
        let config =
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json")))
            as! [String: Any]
        #expect(config["architectures"] as? [String] == ["LlamaForSequenceClassification"])
        #expect((config["id2label"] as? [String: String]) == ["0": "LABEL_0"] && config["pad_token_id"] as? Int == 0)
        #expect(
            try SafeTensorsFile(contentsOf: dir.appendingPathComponent("model.safetensors")).info("score.weight").shape
                == [1, 32])

        let back = try ModelRegistry.load(dir.path)
        #expect(back.heads["score"]?.store.values.array == head.store.values.array)
        #expect(back.model.weights.values.array == m.weights.values.array)
        // A plain causal-LM directory has no head.
        try HFCheckpoint.save(model: m, tokenizer: try Tiny.byteTokenizer(), to: dir, overwrite: true)
        #expect(try ModelRegistry.load(dir.path).heads.isEmpty)
    }

    @Test func adapterPathsResolveToOnePEFTDirectory() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let m = RandomModel.make(config: Self.config)
        let adapter = try RandomModel.adapter(on: m, name: "p", seed: 3)
        let out = root.appendingPathComponent("out"), checkpoint = out.appendingPathComponent("checkpoint-4")
        try PEFTAdapter.save(adapter, baseModel: "random", to: checkpoint)
        try Data("{}".utf8).write(to: checkpoint.appendingPathComponent(CheckpointLayout.stateFile))
        try Data("checkpoint-4".utf8).write(to: out.appendingPathComponent(CheckpointLayout.latestFile))
        #expect(try ModelLoader.adapterDirectory(checkpoint).path == checkpoint.path)
        #expect(try ModelLoader.adapterDirectory(out).path == checkpoint.path)
        let final = out.appendingPathComponent(CheckpointLayout.finalAdapterDirectory)
        try PEFTAdapter.save(adapter, baseModel: "random", to: final)
        #expect(
            try ModelLoader.adapterDirectory(out).path == final.path,
            "the final adapter wins over the latest checkpoint")

        let full = root.appendingPathComponent("full/checkpoint-2")
        try FileManager.default.createDirectory(at: full, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: full.appendingPathComponent(CheckpointLayout.stateFile))
        #expect { _ = try ModelLoader.adapterDirectory(full) } throws: { "\($0)".contains("--model") }
        #expect { _ = try ModelLoader.adapterDirectory(root) } throws: { "\($0)".contains("adapter_config.json") }
    }
}

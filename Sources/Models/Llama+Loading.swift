// Loading LlamaModel weights from safetensors (HF names) and from HF checkpoint directories
// (`config.json` + `model.safetensors` or a sharded `model.safetensors.index.json`).

import Foundation
import ModelFormats
import TensorCore

extension LlamaModel {
    /// Copies every parameter from safetensors files (F32/F16/BF16 converted to Float32).
    /// Every expected tensor must be present with the expected shape; unknown extra tensors such as
    /// `rotary_emb.inv_freq` are ignored.
    public func loadWeights(from files: [SafeTensorsFile]) throws {
        let owner = try Self.locate(weights.entries.map { ($0.name, $0.shape) }, in: files)
        for e in weights.entries {
            try owner[e.name]!.copyFloats(e.name, into: weights.values.pointer + e.offset, count: e.count)
        }
    }

    /// The file holding each tensor of `layout`, each checked for presence and shape.
    static func locate(_ layout: [(String, [Int])], in files: [SafeTensorsFile]) throws -> [String: SafeTensorsFile] {
        var owner: [String: SafeTensorsFile] = [:]
        for f in files { for name in f.names { owner[name] = f } }
        for (name, shape) in layout {
            guard let file = owner[name] else {
                throw ModelError.missingTensor(
                    file: files.map(\.url.lastPathComponent).joined(separator: ", "), name: name)
            }
            let info = try file.info(name)
            guard info.shape == shape else {
                throw ModelError.shapeMismatch(file: file.url.path, name: name, expected: shape, found: info.shape)
            }
        }
        return owner
    }

    /// Loads a Hugging Face checkpoint directory. The tensors `config.json` implies are checked against the
    /// files before anything is allocated, so a hostile config cannot ask for memory the files do not hold.
    public static func load(huggingFaceDirectory dir: URL, trainable: Bool = false) throws -> LlamaModel {
        let config = try LlamaConfig(huggingFaceConfig: dir.appendingPathComponent("config.json"))
        let files = try safetensorsFiles(in: dir)
        _ = try locate(layout(config), in: files)
        let model = LlamaModel(config: config, trainable: trainable)
        try model.loadWeights(from: files)
        return model
    }

    /// `model.safetensors`, or the shards listed by `model.safetensors.index.json`.
    static func safetensorsFiles(in dir: URL) throws -> [SafeTensorsFile] {
        let single = dir.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single.path) { return [try SafeTensorsFile(contentsOf: single)] }
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        guard let data = try? FileContents.read(index),
            let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else {
            throw ModelError.unreadable(
                file: dir.path, reason: "neither model.safetensors nor a readable model.safetensors.index.json")
        }
        guard let map = json["weight_map"] as? [String: String] else {
            throw ModelError.invalidConfig(
                file: index.path, field: "weight_map", value: "missing", expected: "an object of tensor → shard file")
        }
        return try Set(map.values).sorted().map { shard in
            guard !shard.contains("/") else {
                throw ModelError.invalidConfig(
                    file: index.path, field: "weight_map", value: shard, expected: "a file name in the same directory")
            }
            return try SafeTensorsFile(contentsOf: dir.appendingPathComponent(shard))
        }
    }
}

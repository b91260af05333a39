// The one loading path: a model (built-in name, `.gguf` file or Hugging Face directory, via
// `ModelRegistry`), in the weight form asked for, plus optionally an adapter — a PEFT directory, a
// training output directory (its final `adapter/`, else its latest checkpoint) or a checkpoint — with
// the scalar heads saved beside it. Every CLI command loads through here.

import Foundation
import Models
import Tokenizers

public enum ModelLoader {
    /// How the base weights are held.
    public enum WeightForm: Sendable, Equatable {
        /// Float32, trainable when asked (full fine-tune).
        case dense
        /// A GGUF's quantised tensors kept as they are (frozen).
        case quantized
        /// bf16 (frozen).
        case bf16
    }

    /// Loads `model` in `form` and, when `adapter` is given, the adapter (registered on the model as
    /// `adapterName`) and its heads into `LoadedModel.adapter` / `.heads`.
    public static func load(
        model spec: String, form: WeightForm = .dense, trainable: Bool = false, adapter: URL? = nil,
        adapterName: String = "adapter", log: (String) -> Void = { _ in }
    ) throws -> LoadedModel {
        precondition(form == .dense || !trainable, "quantised and bf16 bases are frozen")
        var loaded = try ModelRegistry.load(spec, trainable: trainable, keepQuantized: form == .quantized, log: log)
        if form == .bf16 {
            loaded = LoadedModel(
                model: loaded.model.withBF16Weights(), tokenizer: loaded.tokenizer,
                chatTemplate: loaded.chatTemplate, source: loaded.source, heads: loaded.heads)
        }
        if let adapter { loaded = try load(adapter: adapter, onto: loaded, name: adapterName) }
        return loaded
    }

    /// Only the tokenizer (no weights) of `spec`.
    public static func loadTokenizer(_ spec: String, log: (String) -> Void = { _ in }) throws -> Tokenizer {
        try ModelRegistry.loadTokenizer(spec, log: log)
    }

    /// `loaded` with the adapter at `url` (and its heads) loaded onto its model.
    public static func load(adapter url: URL, onto loaded: LoadedModel, name: String) throws -> LoadedModel {
        let dir = try adapterDirectory(url)
        var out = loaded
        out.adapter = try PEFTAdapter.load(from: dir, into: loaded.model, name: name)
        for head in try PEFTAdapter.loadHeads(from: dir, hiddenSize: loaded.model.config.hiddenSize) {
            out.heads[head.name] = head
        }
        return out
    }

    /// The PEFT directory `url` stands for: itself, its final `adapter/` (a training output directory),
    /// or the checkpoint its `latest` names.
    public static func adapterDirectory(_ url: URL) throws -> URL {
        let fm = FileManager.default
        func isPEFT(_ d: URL) -> Bool {
            fm.fileExists(atPath: d.appendingPathComponent(PEFTAdapter.configFileName).path)
        }
        if isPEFT(url) { return url }
        let final = url.appendingPathComponent(CheckpointLayout.finalAdapterDirectory)
        if isPEFT(final) { return final }
        if let checkpoint = CheckpointLayout.resolveCheckpoint(url) {
            if isPEFT(checkpoint) { return checkpoint }
            throw ExportError.unsupported(
                file: checkpoint.path, feature: "a full fine-tune checkpoint as --adapter",
                hint:
                    "Hint: it holds \(CheckpointLayout.modelWeightsFile), not an adapter; export it (or use the"
                    + " output's "
                    + "\(CheckpointLayout.finalModelDirectory)/ directory) and pass that with --model.")
        }
        throw ExportError.missingFile(
            path: url.appendingPathComponent(PEFTAdapter.configFileName).path,
            hint:
                "Hint: --adapter takes a PEFT adapter directory (\(PEFTAdapter.configFileName) +"
                + " \(PEFTAdapter.weightsFileName)), "
                + "a training output directory or one of its checkpoint-N directories.")
    }
}

// `rlhf export`: a trained adapter (PEFT directory or training checkpoint) or a base model, written as a
// PEFT adapter, a merged Hugging Face checkpoint directory, or a GGUF file that llama.cpp loads.

import ArgumentParser
import Foundation
import ModelExport
import Models
import Trainers

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a model (optionally with a LoRA adapter merged) as PEFT, a Hugging Face directory or GGUF.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case peft, hf, gguf }

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "peft (adapter only), hf (merged HF directory) or gguf (merged GGUF file).") var format: Format
    @Option(help: "Tensor type: hf: f32 | bf16; gguf: f32 | f16 | q8_0.") var type: String?
    @Option(help: "Destination directory (peft, hf) or file (gguf).") var out: String
    @Flag(help: "Replace an existing destination.") var overwrite = false

    func validate() throws {
        if format == .peft && modelOptions.adapter == nil { throw ValidationError("Please pass --adapter for --format peft.") }
        if let type {
            let allowed = format == .hf ? ["f32", "bf16"] : format == .gguf ? GGUFExport.TensorType.allCases.map(\.rawValue) : []
            guard allowed.contains(type) else {
                throw ValidationError("--type \(type) is not available for --format \(format.rawValue); use one of \(allowed.joined(separator: ", ")).")
            }
        }
    }

    func run() throws {
        let loaded = try modelOptions.load(activatesAdapter: false)
        let model = loaded.model
        var lora: LoRAAdapter?
        if let adapter = modelOptions.adapter { lora = try Self.loadAdapter(URL(fileURLWithPath: adapter), into: model) }
        let dest = URL(fileURLWithPath: out)
        switch format {
        case .peft:
            try PEFTAdapter.save(lora!, baseModel: modelOptions.model, to: dest, overwrite: overwrite)
        case .hf:
            let dtype: HFCheckpoint.DType = type == "bf16" ? .bf16 : .f32
            if let lora {
                try HFCheckpoint.saveMerged(model: model, adapter: lora, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate?.source,
                                            dtype: dtype, to: dest, overwrite: overwrite)
            } else {
                try HFCheckpoint.save(model: model, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate?.source, dtype: dtype,
                                      to: dest, overwrite: overwrite)
            }
        case .gguf:
            let t = GGUFExport.TensorType(rawValue: type ?? "f16")!
            let name = dest.deletingPathExtension().lastPathComponent
            if let lora {
                try GGUFExport.saveMerged(model: model, adapter: lora, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate?.source,
                                          type: t, name: name, to: dest, overwrite: overwrite)
            } else {
                try GGUFExport.save(model: model, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate?.source, type: t,
                                    name: name, to: dest, overwrite: overwrite)
            }
        }
        note("Wrote \(dest.path)")
    }

    /// A PEFT directory, or a training checkpoint / output directory (a LoRA checkpoint is a PEFT directory).
    static func loadAdapter(_ url: URL, into model: LlamaModel) throws -> LoRAAdapter {
        var dir = url
        if !FileManager.default.fileExists(atPath: url.appendingPathComponent(PEFTAdapter.configFileName).path) {
            dir = try Checkpoint.resolve(url)
            guard FileManager.default.fileExists(atPath: dir.appendingPathComponent(PEFTAdapter.configFileName).path) else {
                throw InputError("\(dir.path) is a full fine-tune checkpoint; pass its model.safetensors directory with --model instead of --adapter.")
            }
        }
        return try PEFTAdapter.load(from: dir, into: model, name: "export")
    }
}

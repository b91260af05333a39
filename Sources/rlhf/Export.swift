// `rlhf export`: a trained adapter (PEFT directory or training checkpoint) or a base model, written as a
// PEFT adapter, a merged Hugging Face checkpoint directory, or a GGUF file that llama.cpp loads.

import ArgumentParser
import Foundation
import ModelExport
import Models

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
        if format == .peft && modelOptions.adapter == nil {
            throw ValidationError("Please pass --adapter for --format peft.")
        }
        if let type {
            let allowed =
                format == .hf ? ["f32", "bf16"] : format == .gguf ? GGUFExport.TensorType.allCases.map(\.rawValue) : []
            guard allowed.contains(type) else {
                throw ValidationError(
                    "--type \(type) is not available for --format \(format.rawValue); use one of"
                        + " \(allowed.joined(separator: ", "))."
                )
            }
        }
    }

    func run() throws {
        let loaded = try modelOptions.load()
        let model = loaded.model, lora = loaded.adapter, heads = Array(loaded.heads.values)
        let dest = URL(fileURLWithPath: out)
        switch format {
        case .peft:
            try PEFTAdapter.save(lora!, heads: heads, baseModel: modelOptions.model, to: dest, overwrite: overwrite)
        case .hf:
            let dtype: HFCheckpoint.DType = type == "bf16" ? .bf16 : .f32
            if let lora {
                try HFCheckpoint.saveMerged(
                    model: model, adapter: lora, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate?.source,
                    dtype: dtype, heads: heads, to: dest, overwrite: overwrite)
            } else {
                try HFCheckpoint.save(
                    model: model, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate?.source, dtype: dtype,
                    heads: heads, to: dest, overwrite: overwrite)
            }
        case .gguf:
            let t = GGUFExport.TensorType(rawValue: type ?? "f16")!
            let name = dest.deletingPathExtension().lastPathComponent
            if let lora {
                try GGUFExport.saveMerged(
                    model: model, adapter: lora, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate?.source,
                    type: t, name: name, to: dest, overwrite: overwrite)
            } else {
                try GGUFExport.save(
                    model: model, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate?.source, type: t,
                    name: name, to: dest, overwrite: overwrite)
            }
        }
        note("Wrote \(dest.path)")
    }
}

// `rlhf inspect MODEL`: configuration, tensor table with quantisation types, tokenizer and template.

import ArgumentParser
import Foundation
import ModelFormats
import Models
import TensorCore

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's configuration, tensors and chat template.")

    @Argument(help: "A built-in model name, a .gguf file or a Hugging Face model directory.")
    var model: String = ModelRegistry.defaultModelName
    @Flag(help: "List every tensor.") var tensors = false

    func run() throws {
        print("\(KernelDispatch.summary), threads: \(ThreadPool.shared.threadCount)")
        let path = try ModelRegistry.resolveFile(model, log: note).path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw InputError("\(path): no such file or directory.")
        }
        if isDir.boolValue {
            let loaded = try ModelRegistry.load(path)
            describe(loaded.model.config)
            print("tensors: \(loaded.model.weights.entries.count) (safetensors, loaded as F32)")
            if tensors { for e in loaded.model.weights.entries { print("  \(e.name)  \(e.shape)") } }
            print("chat template:\n\(loaded.chatTemplate?.source ?? "(none)")")
            return
        }
        let gguf = try GGUFFile(contentsOf: URL(fileURLWithPath: path))
        print("file: \(path)  (GGUF v\(gguf.version), alignment \(gguf.alignment))")
        print(
            "name: \(gguf.metadata["general.name"]?.string ?? "?")  architecture:"
                + " \(gguf.metadata["general.architecture"]?.string ?? "?")"
        )
        describe(try LlamaConfig(gguf: gguf))
        var byType: [String: (count: Int, elements: Int, bytes: Int)] = [:]
        for t in gguf.tensors {
            let k = t.type.description
            byType[k, default: (0, 0, 0)].count += 1
            byType[k]!.elements += t.elementCount
            byType[k]!.bytes += t.byteCount
        }
        print("tensors: \(gguf.tensors.count)")
        for (k, v) in byType.sorted(by: { $0.key < $1.key }) {
            print(
                String(
                    format: "  %-6@ %4d tensors  %11d weights  %8.1f MB", k, v.count, v.elements, Double(v.bytes) / 1e6)
            )
        }
        if tensors { for t in gguf.tensors { print("  \(t.name)  \(t.shape)  \(t.type.description)") } }
        print(
            "tokenizer: \(gguf.metadata["tokenizer.ggml.model"]?.string ?? "?") / pre"
                + " \(gguf.metadata["tokenizer.ggml.pre"]?.string ?? "?"),"
                + " \(gguf.metadata["tokenizer.ggml.tokens"]?.array?.count ?? 0) tokens"
        )
        print("chat template:\n\(gguf.metadata["tokenizer.chat_template"]?.string ?? "(none)")")
    }

    func describe(_ c: LlamaConfig) {
        print(
            "layers \(c.layerCount), hidden \(c.hiddenSize), MLP \(c.intermediateSize), heads"
                + " \(c.headCount)/\(c.kvHeadCount) (dim \(c.headDim)), vocab \(c.vocabularySize)"
        )
        print(
            "rope theta \(c.ropeTheta)\(c.ropeScaling.map { " scaling \($0.factor)" } ?? ""), rms eps"
                + " \(c.rmsNormEpsilon), context \(c.maxPositions), tied embeddings \(c.tiesWordEmbeddings), qkv bias"
                + " \(c.hasAttentionBias)"
        )
    }
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage built-in models.", subcommands: [Pull.self, List.self])

    struct Pull: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch a built-in model into the cache (idempotent, SHA-256 verified).")
        @Argument(help: "Built-in model name.") var name: String = ModelRegistry.defaultModelName
        func run() throws { print(try ModelRegistry.pull(name, log: note).path) }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List built-in models and whether they are cached.")
        func run() throws {
            for b in ModelRegistry.builtIns {
                let cached = FileManager.default.fileExists(atPath: ModelRegistry.cachedFile(b).path)
                print("\(b.name)\t\(b.pipPackage)\t\(cached ? ModelRegistry.cachedFile(b).path : "(not cached)")")
            }
        }
    }
}

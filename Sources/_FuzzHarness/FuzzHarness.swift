// What each fuzz target does with one input, for every reader of untrusted input: model files (GGUF, safetensors),
// tokenizer.json, chat templates, JSONL datasets, trainer configs (JSON and YAML) and PEFT adapters. libFuzzer
// drives it through `FuzzTargets` (built only by scripts/fuzz.sh); the test suite replays the seeds and every
// saved finding through it (FuzzRegressionTests). Each input must end in a value or a typed error: a crash, an
// address-sanitizer report, a leak, a timeout or a `FuzzFinding` is a finding. Not API.

import ChatTemplates
import Datasets
import Foundation
import ModelExport
import ModelFormats
import Models
import Tokenizers
import Trainers
import _SharedData
import _TestSupport

public enum FuzzTarget: String, CaseIterable, Sendable {
    case gguf, safetensors, tokenizer, template, jsonl, config, peft
}

/// A property an input broke without crashing (e.g. a round trip that changed the text).
public struct FuzzFinding: Error, CustomStringConvertible {
    public let description: String
}

/// A per-process scratch directory (under TMPDIR; scripts/fuzz.sh points it at /dev/shm), removed at exit (libFuzzer
/// ends with `exit`; after a crash fuzz.sh removes what is left).
let scratch: URL = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlhf-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(at: scratch) }
    return dir
}()

/// A tiny random model (the reference tiny Llama's shape, vocabulary 256) the PEFT target loads adapters onto.
let model = RandomModel.tinyLlama()

/// One byte per token, as the tokenizer round trip checks against.
let byteTokenizer = try! Tokenizer(tokens: SharedData.byteTokens, merges: [], preTokenizer: .gpt2)

func file(_ name: String, _ data: Data) -> URL {
    let url = scratch.appendingPathComponent(name)
    try? data.write(to: url)
    return url
}

/// Splits an input in two at a length given by its first two bytes (for targets that read two files).
func split(_ data: Data) -> (Data, Data) {
    guard data.count >= 2 else { return (data, Data()) }
    let n = min(Int(data[data.startIndex]) << 8 | Int(data[data.startIndex + 1]), data.count - 2)
    let rest = data.dropFirst(2)
    return (Data(rest.prefix(n)), Data(rest.dropFirst(n)))
}

extension FuzzTarget {
    /// Runs one input. Returns whether the target's reader accepted it (errors of the readers are expected); throws
    /// a `FuzzFinding` when the input breaks a property.
    @discardableResult
    public func run(_ data: Data) throws -> Bool {
        try fuzz(data, self)
    }

    /// Valid inputs for the target (made by this project's own writers, so nothing is copied in).
    public func seeds() throws -> [Data] { try makeSeeds(self) }
}

func fuzz(_ data: Data, _ target: FuzzTarget) throws -> Bool {
    switch target {
    case .gguf:
        guard let gguf = try? GGUFFile(contentsOf: file("model.gguf", data)) else { return false }
        for t in gguf.tensors.prefix(16) { _ = try? gguf.floats(t.name) }
        guard (try? Tokenizer(gguf: gguf)) != nil, let config = try? LlamaConfig(gguf: gguf) else { return false }
        // Weights as large as the file allows, but not a model the fuzzer could not run thousands of times.
        guard config.hiddenSize * config.layerCount <= 1 << 16 else { return false }
        return (try? LlamaModel.load(gguf: gguf, keepQuantized: true)) != nil
    case .safetensors:
        guard let st = try? SafeTensorsFile(contentsOf: file("model.safetensors", data)) else { return false }
        return st.tensors.prefix(16).allSatisfy { (try? st.floats($0.name)) != nil }
    case .tokenizer:
        // An even first byte: build a tokenizer from tokenizer.json (+ tokenizer_config.json) and run it on the
        // rest; odd: encode the text with a byte-level tokenizer, which must give the text back.
        let body = Data(data.dropFirst())
        let (json, rest) = split(body)
        if data.first.map({ $0 & 1 == 0 }) ?? true {
            guard let t = try? Tokenizer(tokenizerJSONData: json, tokenizerConfigData: rest.isEmpty ? nil : rest)
            else { return false }
            let text = String(decoding: rest, as: UTF8.self)
            _ = t.decode(t.encode(text, parseSpecialTokens: true))
            return true
        }
        let text = String(decoding: body, as: UTF8.self)
        let decoded = byteTokenizer.decode(byteTokenizer.encode(text, parseSpecialTokens: false))
        if decoded != text {
            throw FuzzFinding(description: "the byte-level round trip changed the text: \(Array(text.utf8))")
        }
        return true
    case .template:
        let (source, rest) = split(data)
        guard let template = try? ChatTemplate(source: String(decoding: source, as: UTF8.self)) else { return false }
        let content = String(decoding: rest, as: UTF8.self)
        let rendered = try? template.render(
            messages: [
                ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: content),
                ChatMessage(role: "assistant", content: "Hi"),
            ], addGenerationPrompt: false, bosToken: "<s>", eosToken: "</s>")
        return rendered != nil
    case .jsonl:
        // The first byte picks the record kind; the rest is the file.
        let body = Data(data.dropFirst())
        _ = try? Dataset<SFTExample>(data: body, name: "any.jsonl", options: ReadOptions(skipInvalid: true))
        switch (data.first ?? 0) % 5 {
        case 0: return (try? Dataset<SFTExample>(data: body, name: "sft.jsonl")) != nil
        case 1: return (try? Dataset<PreferenceExample>(data: body, name: "pairs.jsonl")) != nil
        case 2: return (try? Dataset<Comparison>(data: body, name: "rankings.jsonl")) != nil
        case 3: return (try? Dataset<UnpairedExample>(data: body, name: "kto.jsonl")) != nil
        default: return (try? Dataset<PromptExample>(data: body, name: "prompts.jsonl")) != nil
        }
    case .config:
        // The first byte picks JSON (even) or YAML (odd) and, in bits 1-2, the trainer whose keys are checked.
        let kind = data.first ?? 0
        let url = file(kind & 1 == 0 ? "config.json" : "config.yaml", Data(data.dropFirst()))
        guard let object = try? SFTConfig.load(file: url) else { return false }
        switch (kind >> 1) % 4 {
        case 0: return (try? SFTConfig.decode(object, source: url.path)) != nil
        case 1: return (try? RewardConfig.decode(object, source: url.path)) != nil
        case 2: return (try? DPOConfig.decode(object, source: url.path)) != nil
        default: return (try? PPOConfig.decode(object, source: url.path)) != nil
        }
    case .peft:
        let (config, weights) = split(data)
        let dir = scratch.appendingPathComponent("adapter")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        _ = file("adapter/adapter_config.json", config)
        _ = file("adapter/adapter_model.safetensors", weights)
        return (try? PEFTAdapter.load(from: dir, into: model, name: "fuzz")) != nil
    }
}

// MARK: Seeds

func makeSeeds(_ target: FuzzTarget) throws -> [Data] {
    var seeds: [Data] = []
    func seed(_ data: Data) throws { seeds.append(data) }
    func joined(_ a: Data, _ b: Data) -> Data { Data([UInt8(a.count >> 8), UInt8(a.count & 255)]) + a + b }
    let work = scratch.appendingPathComponent("seeds-\(target)")
    try? FileManager.default.removeItem(at: work)
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    let chatML =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
        + "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    switch target {
    case .gguf:
        for type in GGUFExport.TensorType.allCases {
            let url = work.appendingPathComponent("\(type).gguf")
            try GGUFExport.save(
                model: model, tokenizer: byteTokenizer, chatTemplate: chatML, type: type, name: "seed", to: url)
            try seed(Data(contentsOf: url))
        }
    case .safetensors, .tokenizer:
        let out = work.appendingPathComponent("hf")
        try HFCheckpoint.save(model: model, tokenizer: byteTokenizer, chatTemplate: chatML, to: out)
        if target == .safetensors {
            try seed(Data(contentsOf: out.appendingPathComponent("model.safetensors")))
        } else {
            let json = try Data(contentsOf: out.appendingPathComponent("tokenizer.json"))
            let config = try Data(contentsOf: out.appendingPathComponent("tokenizer_config.json"))
            // Even first byte: tokenizer files; odd: text for the round trip.
            try seed(Data([0]) + joined(json, config))
            try seed(Data("\u{1}Hello, world! 12 + 30 = 42. Ünïcödé ✓".utf8))
        }
    case .template:
        for source in [
            chatML,
            "{% macro say(m) %}{{ m.role | upper }}: {{ m.content | trim }}{% endmacro %}{% for m in messages %}"
                + "{% if loop.first and m.role == 'system' %}[{{ m.content }}]{% else %}{{ say(m) }}{% endif %}"
                + "{% endfor %}{{ eos_token }}",
            "{% set ns = namespace(n=0) %}{% for m in messages | selectattr('role', 'equalto', 'user') %}"
                + "{% set ns.n = ns.n + 1 %}{{ '%d: %s' % (ns.n, m.content) }}{% endfor %}{{ range(3) | join(',') }}",
        ] {
            try seed(joined(Data(source.utf8), Data("What is 2 + 2?".utf8)))
        }
    case .jsonl:
        let files = [
            #"{"prompt": "What is 2 + 2?", "completion": " 4"}"# + "\n" + #"{"prompt": "Hi", "completion": " Hello"}"#,
            #"{"prompt": "Q", "chosen": " good", "rejected": " bad"}"#,
            #"{"prompt": "Q", "completions": ["a", "b", "c"], "ranking": [2, 0, 1]}"#,
            #"{"prompt": "Q", "completion": " yes", "label": true}"#,
            #"{"prompt": [{"role": "user", "content": "Hi"}], "answer": "4"}"#,
            // Kind 5 reads as 0 (SFT): the conversational format.
            #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}"#,
        ]
        for (kind, text) in files.enumerated() { try seed(Data([UInt8(kind)]) + Data((text + "\n").utf8)) }
    case .config:
        try seed(Data([0]) + Data(#"{"learning_rate": 1e-4, "lora_rank": 8, "lora_target_modules": ["q_proj"]}"#.utf8))
        try seed(Data([5]) + Data("beta: 0.1\nloss_type: ipo\nmax_length: 256\nwarmup_ratio: 0.1\n".utf8))
        try seed(Data([7]) + Data("kl_coef: 0.05\nresponse_length: 32\ntemperature: 0.7\n".utf8))
    case .peft:
        let adapter = try LoRAAdapter(name: "seed", model: model.config, config: LoRAConfig(), seed: 1)
        let out = work.appendingPathComponent("adapter")
        try PEFTAdapter.save(adapter, baseModel: "tiny", to: out)
        try seed(
            joined(
                try Data(contentsOf: out.appendingPathComponent("adapter_config.json")),
                try Data(contentsOf: out.appendingPathComponent("adapter_model.safetensors"))))
    }
    try? FileManager.default.removeItem(at: work)
    return seeds
}

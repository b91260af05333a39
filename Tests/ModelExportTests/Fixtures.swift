// Shared test data: ../shared located from this file's path, the tiny random Llama with a
// 256-byte-token tokenizer, SmolLM2 loaded once per process, logits of a prompt, temporary
// directories.

import Foundation
import ModelFormats
import Models
import TensorCore
import Testing
import Tokenizers
import _SharedData
import _TestSupport

enum Shared {
    static let root = SharedData.root
    static func url(_ path: String) -> URL { SharedData.url(path) }

    static func json(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: url(path))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

enum Tiny {
    static let prompt: [Int32] = [5, 17, 200, 31, 9, 77, 3, 140]

    /// The random 2-layer Llama of the reference data (vocab 256, hidden 64, tied embeddings).
    static func model() throws -> LlamaModel {
        RandomModel.tinyLlama()
    }

    /// GPT-2's byte → printable-scalar map (`bytes_to_unicode`), the byte-level token alphabet.
    static let byteScalars: [Character] = SharedData.byteTokens.map { Character($0) }

    /// One token per byte (id = byte value), no merges: the vocabulary the tiny model fits.
    static func byteTokenizer(chatTemplate: String? = nil) throws -> Tokenizer {
        try Tokenizer(
            tokens: byteScalars.map { String($0) }, merges: [],
            tokenTypes: [Int32](repeating: 1, count: 256),
            specialTokens: SpecialTokenIDs(bos: 1, eos: 2, pad: 0), preTokenizer: .gpt2,
            chatTemplate: chatTemplate)
    }

    static let chatTemplate =
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
    static let texts = [
        "Hello world", "  two  spaces\tand tab\n", "digits 12345 and ünïcødé 🙂", "",
    ]
}

/// Logits [T, V] of one unpadded prompt.
func logits(_ m: LlamaModel, _ ids: [Int32], adapter: LoRAAdapter? = nil) -> [Float] {
    let acts = LlamaActivations(config: m.config, batchSize: 1, length: ids.count)
    let h = m.forward(TokenBatch(batchSize: 1, length: ids.count, tokens: ids), adapter: adapter, into: acts)
    return m.logits(h.pointer, rows: ids.count).array
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Whether two arrays hold the same floats bit for bit.
func bitIdentical(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// Expects bit-identical values, reporting the largest difference (not the arrays) otherwise.
func expectBitIdentical(
    _ a: [Float], _ b: [Float], _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    let detail =
        a.count == b.count ? "max |Δ| \(maxAbsDifference(a, b))" : "\(a.count) vs \(b.count) values"
    #expect(bitIdentical(a, b), "\(what): \(detail)", sourceLocation: sourceLocation)
}

/// Names of the parameters whose values differ bit for bit between two stores of one layout.
func differingParameters(_ a: ParameterStore, _ b: ParameterStore) -> [String] {
    let x = parameters(a)
    let y = parameters(b)
    return a.entries.map(\.name).filter { y[$0] == nil || !bitIdentical(x[$0]!, y[$0]!) }
}

/// Every parameter of a store as (name, values).
func parameters(_ store: ParameterStore) -> [String: [Float]] {
    Dictionary(
        uniqueKeysWithValues: store.entries.map { e in
            (
                e.name,
                Array(UnsafeBufferPointer(start: store.values.pointer + e.offset, count: e.count))
            )
        })
}

/// Fills B of every module with N(0, 0.05²) so the adapter changes the outputs.
func randomizeB(_ a: LoRAAdapter, seed: UInt64) {
    var rng = RNG(seed: seed)
    for e in a.store.entries where e.name.hasSuffix("lora_B.weight") {
        rng.fillNormal(a.store.values.pointer + e.offset, count: e.count, std: 0.05)
    }
}

/// A fresh directory under the system temporary directory, removed by the caller.
func temporaryDirectory(_ label: String = #function) throws -> URL {
    let name = "modelexport-\(label.prefix { $0.isLetter || $0.isNumber })-\(UUID().uuidString)"
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised), loaded once for every test in the process.
enum SmolLM2 {
    static let loaded: Result<LoadedModel, Error> = Result {
        try ModelRegistry.load(try DefaultModelLocation.existingGGUFFile().path)
    }
    static func get() throws -> LoadedModel { try loaded.get() }

    /// A short ChatML prompt (user turn + generation prompt), 19 tokens.
    static func prompt(_ t: Tokenizer) -> [Int32] {
        t.encode(
            "<|im_start|>user\nWhat is 2+2? Answer briefly.<|im_end|>\n<|im_start|>assistant\n",
            parseSpecialTokens: true
        ).map(Int32.init)
    }
}

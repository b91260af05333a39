// Tiny-model fixtures for trainer tests: a random Llama of the reference tiny Llama's shape (no file needed) with a
// byte-level tokenizer of exactly its 256-token vocabulary, and small synthetic SFT files.

import Foundation
import Models
import TensorCore
import Testing
import Tokenizers
import _SharedData
import _TestSupport

@testable import Trainers

enum Fixtures {
    /// Two runs of one step agree: `names`' metric means and every group's gradient within `relative` (of the
    /// metric, at least 1, and of the group's largest gradient, which must not be zero).
    static func expectSameStep(
        _ a: (groups: [ParameterGroup], sums: MetricSums), _ b: (groups: [ParameterGroup], sums: MetricSums),
        metrics names: [String], relative: Double = 1e-5
    ) throws {
        for name in names {
            let (x, y) = (try #require(a.sums.means[name]), try #require(b.sums.means[name]))
            #expect(abs(x - y) <= relative * max(1, abs(x)), "\(name): \(x) vs \(y)")
        }
        for (g, h) in zip(a.groups, b.groups) {
            let x = try #require(g.store.gradients).array, y = try #require(h.store.gradients).array
            let scale = x.map(abs).max() ?? 0
            #expect(scale > 0, "\(g.name) has a gradient")
            let worst = zip(x, y).map { abs($0 - $1) }.max() ?? 0
            #expect(Double(worst) <= relative * Double(scale), "\(g.name): \(worst) of \(scale)")
        }
    }

    static let shared = SharedData.root

    /// One token per byte, EOS 10.
    static func byteTokenizer() throws -> Tokenizer {
        try Tokenizer(
            tokens: SharedData.byteTokens, merges: [], specialTokens: SpecialTokenIDs(eos: 10), preTokenizer: .gpt2)
    }

    static func tinyModel(trainable: Bool) throws -> LoadedModel {
        LoadedModel(
            model: RandomModel.tinyLlama(trainable: trainable), tokenizer: try byteTokenizer(), chatTemplate: nil,
            source: URL(fileURLWithPath: "/random/tiny-llama"))
    }

    /// A temporary directory removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlhf-trainer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Synthetic prompt/completion records: "<a> + <b> =" → " <a+b>" (learnable, short).
    static func additionFile(count: Int, in dir: URL, name: String = "train.jsonl", seed: Int = 0) throws -> URL {
        var lines: [String] = []
        for i in 0..<count {
            let a = (i * 7 + seed) % 10, b = (i * 3 + 1) % 10
            lines.append("{\"prompt\": \"\(a)+\(b)=\", \"completion\": \"\(a + b)\"}")
        }
        let url = dir.appendingPathComponent(name)
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }
}

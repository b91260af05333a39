// The real default model (SmolLM2-135M-Instruct, Q4_1 GGUF) against transformers in float32:
// per-position log-probs (≤ 2e-4; their fp32-vs-fp64 floor is 1e-4), continuation sums (≤ 1e-3),
// and the three greedy generations of generation_golden.json, id for id.

import Foundation
import ModelFormats
import TensorCore
import Testing
import Tokenizers
import _SharedData

@testable import Models

/// Loaded once for every test in the process (135 M parameters).
enum SmolLM2 {
    static let loaded: Result<(LlamaModel, Tokenizer), Error> = Result {
        let gguf = try GGUFFile(contentsOf: try DefaultModelLocation.existingGGUFFile())
        return (try LlamaModel.load(gguf: gguf), try Tokenizer(gguf: gguf))
    }
    static func get() throws -> (LlamaModel, Tokenizer) { try loaded.get() }
}

func intArray(_ any: Any?) -> [Int] {
    if let a = any as? [Int] { return a }
    if let s = any as? String, let data = s.data(using: .utf8),
        let a = try? JSONSerialization.jsonObject(with: data) as? [Int]
    {
        return a
    }
    return []
}

/// |log-prob − transformers'| of the top-10 tokens at every position of one logits_golden.json case, and
/// the final hidden states of prompt + continuation.
func goldenTop10Errors(_ model: LlamaModel, _ item: [String: Any]) -> (errors: [Double], hidden: FloatBuffer) {
    let v = model.config.vocabularySize
    let ids = (intArray(item["prompt_ids"]) + intArray(item["continuation_ids"])).map(Int32.init), t = ids.count
    let acts = LlamaActivations(config: model.config, batchSize: 1, length: t)
    let hidden = model.forward(TokenBatch(batchSize: 1, length: t, tokens: ids), adapter: nil, into: acts)
    let logits = model.logits(hidden.pointer, rows: t)
    LogSoftmax.forward(out: logits.pointer, input: logits.pointer, rows: t, columns: v)
    let positions = item["positions"] as! [String: Any]
    let top10 = positions["top10_ids"] as! [[Int]], top10lp = (positions["top10_logprobs"] as! [Any]).map(doubles)
    var errors: [Double] = []
    for p in 0..<t {
        for r in 0..<10 { errors.append(abs(Double(logits.pointer[p * v + top10[p][r]]) - top10lp[p][r])) }
    }
    return (errors, hidden)
}

@Suite(.serialized) struct SmolLM2GoldenTests {
    @Test func configFromGGUF() throws {
        let (model, _) = try SmolLM2.get()
        let c = model.config
        #expect(c.layerCount == 30 && c.hiddenSize == 576 && c.headCount == 9 && c.kvHeadCount == 3 && c.headDim == 64)
        #expect(
            c.intermediateSize == 1536 && c.vocabularySize == 49152 && c.tiesWordEmbeddings && c.ropeTheta == 100_000)
        #expect(model.weights.parameterCount == 134_515_008)
    }

    @Test(SharedData.needs("reference/logits_golden.json")) func logProbsMatchTransformers() throws {
        let (model, tokenizer) = try SmolLM2.get()
        let golden = try Shared.json("reference/logits_golden.json")
        let v = model.config.vocabularySize, cdim = model.config.hiddenSize
        for case let item as [String: Any] in golden["cases"] as! [Any] {
            let name = item["name"] as! String
            let promptIDs = intArray(item["prompt_ids"]), contIDs = intArray(item["continuation_ids"])
            #expect(
                tokenizer.encode(item["prompt_text"] as! String, parseSpecialTokens: true) == promptIDs,
                "\(name): prompt ids")
            let ids = (promptIDs + contIDs).map(Int32.init), t = ids.count
            let (errors, hidden) = goldenTop10Errors(model, item)
            let worst = errors.max() ?? .nan
            #expect(worst <= 2e-4, "\(name): worst top-10 log-prob error \(worst)")
            // Sequence log-prob of the continuation through the chunked head.
            let targets = (0..<t).map { i in i + 1 < t && i + 1 >= promptIDs.count ? ids[i + 1] : -100 }
            let lp = FloatBuffer(count: t), lse = FloatBuffer(count: t)
            targets.withUnsafeBufferPointer { tp in
                TokenLogProbs.forward(
                    logProbs: lp.pointer, lse: lse.pointer, hidden: hidden.pointer, weight: model.outputWeight,
                    targets: tp.baseAddress!, rows: t, channels: cdim, vocabulary: v)
            }
            let expectedTokens = doubles(item["continuation_token_logprobs"])
            for (i, e) in expectedTokens.enumerated() {
                let got = Double(lp.pointer[promptIDs.count - 1 + i])
                #expect(abs(got - e) <= 2e-4, "\(name): continuation token \(i): \(got) vs \(e)")
            }
            let sum = (0..<t).reduce(0.0) { $0 + Double(lp.pointer[$1]) }
            let expected = (item["continuation_logprob_sum"] as! NSNumber).doubleValue
            #expect(abs(sum - expected) <= 1e-3, "\(name): continuation sum \(sum) vs \(expected)")
        }
    }

    @Test(SharedData.needs("reference/generation_golden.json")) func greedyGenerationsMatchTransformers() throws {
        let (model, tokenizer) = try SmolLM2.get()
        let golden = try Shared.json("reference/generation_golden.json")
        let cases = golden["cases"] as! [[String: Any]]
        let prompts = cases.map { intArray($0["prompt_ids"]).map(Int32.init) }
        // All three prompts in one ragged, left-padded batch.
        let results = try model.generate(
            prompts: prompts, options: GenerationOptions(maxNewTokens: 32, stopTokenIDs: [2]))
        for (i, c) in cases.enumerated() {
            #expect(results[i].tokens == intArray(c["generated_ids"]), "case \(i)")
            #expect(tokenizer.decode(results[i].tokens) == c["generated_text"] as! String, "case \(i) text")
        }
    }
}

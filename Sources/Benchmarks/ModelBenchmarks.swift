// `Benchmarks model`: SmolLM2-135M (fp32, dequantised from the default GGUF) against the PyTorch/HF
// and llama.cpp rows of perf.md: load time, generation at batch 1 and 16 (32-token prompt + 128 new,
// greedy, prefill included), forward + next-token log-probs at 8×256, prefill of 1×256 and 8×256 prompts
// (last position's logits, like llama-bench's pp256), plus peak RSS (training: TrainBenchmarks.swift).

import Foundation
import ModelFormats
import Models
import TensorCore
import _CKernels

enum ModelBenchmarks {
    static func peakRSSMegabytes() -> Double { ProcessMemory.peakRSSMegabytes() }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    static func run(_ which: Set<String>, formats: Set<String>) throws {
        let t0 = now()
        let gguf = try GGUFFile(contentsOf: try DefaultModelLocation.existingGGUFFile())
        let model = try LlamaModel.load(gguf: gguf)
        print(
            "SmolLM2-135M load (GGUF Q4_1 → fp32): \(String(format: "%.2f", now() - t0)) s, RSS high-water"
                + " \(Int(peakRSSMegabytes())) MiB"
        )
        let t1 = now()
        let quantized = try LlamaModel.load(gguf: gguf, keepQuantized: true)
        let qBytes =
            quantized.quantizedWeights.values.reduce(0) { $0 + $1.byteCount } + quantized.weights.values.count * 4
        print(
            "SmolLM2-135M load, weights kept quantised (Q4_1/Q8_0): \(String(format: "%.2f", now() - t1)) s,"
                + " \(qBytes / 1_000_000) MB of weights (dense fp32: 538 MB)"
        )
        let t2 = now()
        let bf16 = model.withBF16Weights()
        print(
            "SmolLM2-135M bf16 copy: \(String(format: "%.2f", now() - t2)) s, AVX512_BF16 kernels"
                + " \(rk_uses_avx512bf16() != 0 ? "on" : "off")"
        )
        var rng = RNG(seed: 3)
        func randomIDs(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(rng.next() % 49152) } }

        let batches = [1, 16].filter { which.contains("generate") || which.contains("generate\($0)") }
        if !batches.isEmpty {
            for batch in batches {
                let prompts = (0..<batch).map { _ in randomIDs(32) }
                let opts = GenerationOptions(maxNewTokens: 128)  // no stop ids: always 128 tokens
                // Labels: the CLI flag each weight format corresponds to (generate, chat and logprobs keep the file's
                // quantised weights by default; results match fp32, see the README).
                let labels = ["fp32": "fp32 (--dense)", "quantised": "Q4_1 kept (default)", "bf16": "bf16 (--bf16)"]
                for (name, m) in [("fp32", model), ("quantised", quantized), ("bf16", bf16)]
                where formats.contains(name) {
                    _ = try m.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 4))
                    let t = try measure(warmup: 0, runs: 3) { _ = try m.generate(prompts: prompts, options: opts) }
                    let p = try measure(warmup: 0, runs: 3) {
                        _ = try m.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 1))
                    }
                    print(
                        "generate greedy, batch \(pad("\(batch)", 2)), 32 + 128, \(pad(labels[name]!, 19)):"
                            + " \(pad(f1(Double(batch * 128) / t.median), 7)) tok/s   (HF fp32"
                            + " \(batch == 1 ? "16.1" : "123.0"); llama.cpp"
                            + " \(batch == 1 ? "F32 45-58, Q4_1 107, Q8_0 131-137" : "F32 287, BF16 482, Q8_0 398"))"
                    )
                    print(
                        "    prefill + first token \(f1(p.median * 1000)) ms, then"
                            + " \(f1((t.median - p.median) * 1000 / 127)) ms per decode step"
                    )
                }
            }
        }
        if which.contains("logprobs") {
            let b = 8, t = 256, c = model.config
            let batch = TokenBatch(batchSize: b, length: t, tokens: randomIDs(b * t))
            let acts = LlamaActivations(config: c, batchSize: b, length: t)
            let targets = (0..<(b * t)).map { i in i % t == t - 1 ? -100 : batch.tokens[i + 1] }
            let lp = FloatBuffer(count: b * t), lse = FloatBuffer(count: b * t)
            for (name, m) in [("fp32 (--dense)", model), ("Q4_1 kept (default)", quantized)] {
                let timing = measure(warmup: 1, runs: 3) {
                    let h = m.forward(batch, adapter: nil, into: acts)
                    targets.withUnsafeBufferPointer { tp in
                        TokenLogProbs.forward(
                            logProbs: lp.pointer, lse: lse.pointer, hidden: h.pointer, weight: m.outputWeight,
                            targets: tp.baseAddress!, rows: b * t, channels: c.hiddenSize, vocabulary: c.vocabularySize)
                    }
                }
                print(
                    "forward + token log-probs 8×256, \(pad(name, 19)): \(pad(f1(Double(b * t) / timing.median), 7))"
                        + " tok/s   (HF 467)"
                )
            }
            // Prefill, like for like with llama-bench's pp256 (which asks for the last position's logits only):
            // the prompt through the decoder into a KV cache, then one row of logits per sequence. Scoring above
            // also takes every position's log-probs over the whole vocabulary: 27 % more FLOPs per token.
            for rows in [1, b] {
                let prompt = TokenBatch(batchSize: rows, length: t, tokens: Array(batch.tokens.prefix(rows * t)))
                let cache = KVCache(config: c, batchSize: rows, capacity: t)
                let logits = FloatBuffer(count: rows * c.vocabularySize)
                for (name, m) in [("fp32 (--dense)", model), ("Q4_1 kept (default)", quantized)] {
                    let timing = measure(warmup: 1, runs: 3) {
                        cache.reset()
                        let h = m.forwardCached(prompt, cache: cache)
                        m.logits(h.pointer, rows: rows, into: logits.pointer)
                    }
                    print(
                        "prefill \(rows)×256 (last logits, as pp256), \(pad(name, 19)):"
                            + " \(pad(f1(Double(rows * t) / timing.median), 7)) tok/s"
                    )
                }
            }
            // The trainers' batched scoring API on the same tokens: every token scored, then 64 prompt + 192
            // completion tokens per row (the prompt's vocabulary products are skipped).
            let rows = (0..<b).map { Array(batch.tokens[($0 * t)..<(($0 + 1) * t)]) }
            let all = LabeledBatch(rows: rows, lossMask: rows.map { $0.map { _ in true } }, padID: 0)
            let completions = LabeledBatch(
                prompts: rows.map { Array($0.prefix(64)) }, completions: rows.map { Array($0.dropFirst(64)) }, padID: 0)
            for (name, m) in [("fp32 (--dense)", model), ("Q4_1 kept (default)", quantized)] {
                for (label, labeled) in [("all tokens", all), ("64 + 192", completions)] {
                    let timing = try measure(warmup: 1, runs: 3) { _ = try m.score(labeled, adapter: nil, into: acts) }
                    print(
                        "LlamaModel.score 8×256 (\(pad(label, 10))), \(pad(name, 19)):"
                            + " \(pad(f1(Double(b * t) / timing.median), 7)) tok/s"
                    )
                }
            }
        }
        let panelBytes =
            quantized.quantizedWeights.values.reduce(0) { $0 + $1.byteCount } + quantized.weights.values.count * 4
        if panelBytes != qBytes {
            print(
                "weights kept quantised, with the decode panels built by batched decoding: \(panelBytes / 1_000_000) MB"
            )
        }
        print("peak RSS: \(Int(peakRSSMegabytes())) MiB")
    }
}

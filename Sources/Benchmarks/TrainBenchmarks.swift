// `Benchmarks train`: one SmolLM2-135M training step at 4×256 (full fine-tune and LoRA r=16 on all 7
// projections, like perf.md's PyTorch rows) with the forward / loss+backward / optimizer split, and the
// peak RSS of a full fine-tune step at 8×512 with activation checkpointing (`train-memory`).

import Foundation
import ModelFormats
import Models
import TensorCore

enum TrainBenchmarks {
    struct Split {
        var forward = 0.0, backward = 0.0, optimizer = 0.0; var total: Double { forward + backward + optimizer }
    }

    static func step(
        _ model: LlamaModel, adapter: LoRAAdapter? = nil, store: ParameterStore, batch b: Int, length t: Int,
        checkpointed: Bool, steps: Int
    ) -> Split {
        var rng = RNG(seed: 3)
        let c = model.config
        let batch = TokenBatch(batchSize: b, length: t, tokens: (0..<(b * t)).map { _ in Int32(rng.next() % 49152) })
        let acts = LlamaActivations(config: c, batchSize: b, length: t, checkpointed: checkpointed)
        acts.isTraining = true
        let targets = (0..<(b * t)).map { i in i % t == t - 1 ? -100 : batch.tokens[i + 1] }
        let dLogp = [Float](repeating: -1 / Float(b * (t - 1)), count: b * t)
        let dHidden = FloatBuffer(count: b * t * c.hiddenSize)
        let opt = AdamW(store: store, config: AdamWConfig(weightDecay: 0.01))
        var splits: [Split] = []
        for i in 0..<(steps + 1) {
            var s = Split()
            let a = ModelBenchmarks.now()
            if i == 0 { store.zeroGradients() }  // afterwards AdamW zeroes what it consumes
            let h = model.forward(batch, adapter: adapter, into: acts)
            let b0 = ModelBenchmarks.now()
            targets.withUnsafeBufferPointer { tp in
                _ = TokenLogProbs.forwardBackward(
                    dHidden: dHidden.pointer, dWeight: model.outputWeightGradient, logProbs: nil,
                    dLogProbs: dLogp, hidden: h.pointer, weight: model.outputWeight,
                    targets: tp.baseAddress!, rows: b * t, channels: c.hiddenSize, vocabulary: c.vocabularySize)
            }
            model.backward(dOutput: dHidden.pointer, acts: acts)
            let o0 = ModelBenchmarks.now()
            let (_, factor) = GradientClipping.clipFactor([store], maxNorm: 1)
            opt.update(learningRate: 1e-5, gradientScale: factor, zeroingGradients: true)
            s.forward = b0 - a
            s.backward = o0 - b0
            s.optimizer = ModelBenchmarks.now() - o0
            if i > 0 { splits.append(s) }  // first step is a warm-up
        }
        return splits.sorted { $0.total < $1.total }[splits.count / 2]
    }

    static func report(_ name: String, tokens: Int, _ s: Split, anchor: String) {
        print(
            "\(pad(name, 34)) \(pad(f1(Double(tokens) / s.total), 7)) tok/s  (\(anchor))  forward"
                + " \(String(format: "%.2f", s.forward)) s, loss+backward \(String(format: "%.2f", s.backward)) s,"
                + " clip+AdamW \(String(format: "%.2f", s.optimizer)) s"
        )
    }

    /// `Benchmarks prefix`: one GRPO micro-batch (4 prompts of 36 tokens × 4 completions of 32, perf.md §4's shape) and
    /// one DPO batch (8 pairs, 32-token prompt, 96-token responses) scored and backpropagated through LoRA r=16, the
    /// rows padded plainly and with each prompt computed once (`TokenBatch(rows:shareable:padID:)`), median of 5.
    static func prefixSharing() throws {
        let gguf = try GGUFFile(contentsOf: try DefaultModelLocation.existingGGUFFile())
        let fp32 = try LlamaModel.load(gguf: gguf, trainable: false)
        var cfg = LoRAConfig()
        cfg.dropout = 0
        var rng = RNG(seed: 9)
        func ids(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(3 + rng.next() % 49000) } }
        let grpoPrompts = (0..<4).map { _ in ids(36) }
        let grpo = (
            prompts: grpoPrompts.flatMap { Array(repeating: $0, count: 4) },
            completions: (0..<16).map { _ in
                ids(32)
            }
        )
        let dpoPrompts = (0..<8).map { _ in ids(32) }
        let dpo = (prompts: dpoPrompts + dpoPrompts, completions: (0..<16).map { _ in ids(80 + Int(rng.next() % 32)) })
        for (form, model) in [("fp32", fp32), ("bf16", fp32.withBF16Weights())] {
            let adapter = try model.addAdapter(named: "bench-\(form)", config: cfg, seed: 1)
            for (name, rows) in [("GRPO 4 prompts × 4", grpo), ("DPO 8 pairs", dpo)] {
                let shared = LabeledBatch(prompts: rows.prompts, completions: rows.completions, padID: 0)
                let plain = LabeledBatch(
                    rows: zip(rows.prompts, rows.completions).map { $0 + $1 },
                    lossMask: zip(rows.prompts, rows.completions).map {
                        [Bool](repeating: false, count: $0.count) + $1.map { _ in true }
                    }, padID: 0)
                let acts = LlamaActivations(config: model.config, batchSize: 1, length: plain.batch.tokenCount)
                var times: [Double] = []
                for batch in [plain, shared] {
                    var runs: [Double] = []
                    for _ in 0..<6 {
                        let start = ModelBenchmarks.now()
                        let scored = try model.score(batch, adapter: adapter, into: acts, training: true)
                        model.backward(scored, dLogProbs: [Float](repeating: -0.01, count: scored.logProbs.count))
                        runs.append(ModelBenchmarks.now() - start)
                    }
                    adapter.store.zeroGradients()
                    times.append(runs.dropFirst().sorted()[2])
                }
                print(
                    "\(pad("prefix sharing, \(name), LoRA \(form)", 44)) plain \(plain.batch.tokenCount) tokens"
                        + " \(String(format: "%.3f", times[0])) s, shared \(shared.batch.tokenCount) tokens"
                        + " \(String(format: "%.3f", times[1])) s: \(String(format: "%.2f", times[0] / times[1]))×")
            }
        }
    }

    static func run(_ which: Set<String>) throws {
        let gguf = try GGUFFile(contentsOf: try DefaultModelLocation.existingGGUFFile())
        if which.contains("train") || which.contains("train-lora") {
            let lora = try LlamaModel.load(gguf: gguf, trainable: false)
            var cfg = LoRAConfig()
            cfg.dropout = 0
            let adapter = try lora.addAdapter(named: "bench", config: cfg, seed: 1)
            report(
                "LoRA r=16 (7 projections) 4×256", tokens: 1024,
                step(
                    lora, adapter: adapter, store: adapter.store, batch: 4, length: 256, checkpointed: false, steps: 5),
                anchor: "PyTorch+PEFT 189.6")
            let qlora = try LlamaModel.load(gguf: gguf, keepQuantized: true)
            let qAdapter = try qlora.addAdapter(named: "bench", config: cfg, seed: 1)
            report(
                "LoRA r=16, quantised base 4×256", tokens: 1024,
                step(
                    qlora, adapter: qAdapter, store: qAdapter.store, batch: 4, length: 256, checkpointed: false,
                    steps: 5),
                anchor: "PyTorch+PEFT 189.6")
            let bf16 = lora.withBF16Weights()
            let bAdapter = try bf16.addAdapter(named: "bench", config: cfg, seed: 1)
            report(
                "LoRA r=16, bf16 base 4×256", tokens: 1024,
                step(
                    bf16, adapter: bAdapter, store: bAdapter.store, batch: 4, length: 256, checkpointed: false, steps: 5
                ),
                anchor: "PyTorch+PEFT 189.6 (fp32)")
        }
        if which.contains("train") || which.contains("train-full") {
            let full = try LlamaModel.load(gguf: gguf, trainable: true)
            report(
                "full fine-tune 4×256", tokens: 1024,
                step(full, store: full.weights, batch: 4, length: 256, checkpointed: false, steps: 5),
                anchor: "PyTorch 138.9")
        }
        if which.contains("train-memory") {
            let full = try LlamaModel.load(gguf: gguf, trainable: true)
            let s = step(full, store: full.weights, batch: 8, length: 512, checkpointed: true, steps: 1)
            report("full FT 8×512, checkpointed", tokens: 4096, s, anchor: "PyTorch 123.5, 14.2 GB")
        }
        print(
            "peak RSS: \(Int(ModelBenchmarks.peakRSSMegabytes())) MiB   (PyTorch full FT 8×512: 14.2 GB; llama.cpp"
                + " finetune 2.4 GB)"
        )
    }
}

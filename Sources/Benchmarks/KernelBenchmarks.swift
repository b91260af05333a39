// `Benchmarks gemm`: our matmul entry point vs calling cblas_sgemm directly, at SmolLM2 shapes.
// `Benchmarks kernels`: GB/s of memory-bound kernels against the 33 GB/s STREAM triad figure of perf.md.

import Foundation
import TensorCore
import _CBLAS

enum KernelBenchmarks {
    static func gemm() {
        let threads = ThreadPool.shared.threadCount
        print(
            "GEMM, GFLOP/s (median of 9 after 2 warm-ups): MatMul.gemm (mode \(MatMul.mode.rawValue)) vs cblas_sgemm"
                + " called directly with OpenBLAS on \(threads) threads"
        )
        print("\(pad("M×N×K", 16)) \(pad("layout", 7)) \(pad("ours", 8)) \(pad("cblas", 8)) ratio")
        let shapes = [(512, 576, 576), (512, 1536, 576), (512, 576, 1536), (512, 49152, 576)]
        var rng = RNG(seed: 1)
        do {  // first-use costs (per-thread BLAS buffers, waking the pool) stay out of the table
            let w = FloatBuffer(count: 512 * 576)
            for _ in 0..<20 { MatMul.gemm(w.pointer, w.pointer, w.pointer, m: 512, n: 512, k: 512) }
        }
        for (m, n, k) in shapes {
            let a = FloatBuffer(count: m * k), b = FloatBuffer(count: k * n), c = FloatBuffer(count: m * n)
            rng.fillNormal(a.pointer, count: a.count)
            rng.fillNormal(b.pointer, count: b.count)
            for layout in ["NN", "NT", "TN"] {
                let ta = layout == "TN", tb = layout == "NT"
                let flops = 2.0 * Double(m * n * k)
                // Ours first; then direct cblas with OpenBLAS's own threads, then a pause so those
                // threads stop spinning (they would steal a core from our pool's next measurement).
                let oursT = measure {
                    MatMul.gemm(c.pointer, a.pointer, transA: ta, b.pointer, transB: tb, m: m, n: n, k: k)
                }.median
                openblas_set_num_threads(Int32(threads))
                let directT = measure {
                    cblas_sgemm(
                        CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), 1, a.pointer, Int32(ta ? m : k), b.pointer, Int32(tb ? k : n),
                        0, c.pointer, Int32(n))
                }.median
                openblas_set_num_threads(MatMul.mode == .poolSplit ? 1 : Int32(threads))
                usleep(300_000)
                print(
                    "\(pad("\(m)×\(n)×\(k)", 16)) \(pad(layout, 7)) \(pad(f1(flops / oursT / 1e9), 8))"
                        + " \(pad(f1(flops / directT / 1e9), 8)) \(String(format: "%.2f", directT / oursT))"
                )
            }
        }
    }

    static func kernels() {
        print("Memory-bound kernels, GB/s (STREAM counting: each array read or written once; STREAM triad ≈ 33 GB/s)")
        print("C \(KernelDispatch.summary), threads: \(ThreadPool.shared.threadCount)")
        var rng = RNG(seed: 2)
        func report(_ name: String, bytes: Double, _ t: Timing) {
            print(
                "\(pad(name, 40)) \(pad(f1(bytes / t.median / 1e9), 7)) GB/s "
                    + " (\(String(format: "%.2f", t.median * 1e3)) ms)"
            )
        }
        // RMSNorm: 16384 rows × 576 (8 × 2048 tokens of SmolLM2 hidden).
        do {
            let rows = 16384, c = 576
            let x = FloatBuffer(count: rows * c), y = FloatBuffer(count: rows * c), w = FloatBuffer(count: c),
                rstd = FloatBuffer(count: rows)
            rng.fillNormal(x.pointer, count: x.count)
            rng.fillNormal(w.pointer, count: c)
            let t = measure(runs: 15) {
                RMSNorm.forward(
                    out: y.pointer, rstd: rstd.pointer, input: x.pointer, weight: w.pointer, rows: rows, channels: c,
                    epsilon: 1e-5)
            }
            report("RMSNorm fwd 16384×576", bytes: 2.0 * Double(rows * c) * 4, t)
        }
        // Softmax over the vocabulary: 256 rows × 49152.
        do {
            let rows = 256, c = 49152
            let x = FloatBuffer(count: rows * c), y = FloatBuffer(count: rows * c)
            rng.fillNormal(x.pointer, count: x.count)
            let t = measure(runs: 15) { Softmax.forward(out: y.pointer, input: x.pointer, rows: rows, columns: c) }
            report("softmax 256×49152", bytes: 2.0 * Double(rows * c) * 4, t)
        }
        // SwiGLU: 4096 tokens × 1536.
        do {
            let n = 4096 * 1536
            let g = FloatBuffer(count: n), u = FloatBuffer(count: n), y = FloatBuffer(count: n)
            rng.fillNormal(g.pointer, count: n)
            rng.fillNormal(u.pointer, count: n)
            let t = measure(runs: 15) { SwiGLU.forward(out: y.pointer, gate: g.pointer, up: u.pointer, count: n) }
            report("SwiGLU fwd 4096×1536", bytes: 3.0 * Double(n) * 4, t)
        }
        // AdamW over SmolLM2-135M's 134.5 M parameters: reads p, g, m, v; writes p, m, v.
        do {
            let store = ParameterStore(layout: [("w", [134_515_008])], trainable: true)
            rng.fillNormal(store.gradients!.pointer, count: store.values.count)
            let opt = AdamW(store: store, config: AdamWConfig(weightDecay: 0.01))
            let t = measure(warmup: 1, runs: 5) { opt.update(learningRate: 1e-4) }
            report("AdamW step, 134.5 M params", bytes: 7.0 * 134_515_008 * 4, t)
        }
    }
}

extension KernelBenchmarks {
    /// The skinny products of a LoRA r=16 projection at 1024 tokens (576 → 576).
    static func loraShapes() {
        print("LoRA-shaped sgemm (N = 1024 tokens, in = out = 576, r = 16), GFLOP/s and µs")
        let shapes: [(String, Int, Int, Int, Bool, Bool)] = [
            ("u = x Aᵀ        (NT)", 1024, 16, 576, false, true),
            ("y += u Bᵀ       (NT)", 1024, 576, 16, false, true),
            ("dB += dyᵀ u     (TN)", 576, 16, 1024, true, false),
            ("dBᵀ += uᵀ dy    (TN)", 16, 576, 1024, true, false),
            ("du = dy B       (NN)", 1024, 16, 576, false, false),
            ("dA += duᵀ x     (TN)", 16, 576, 1024, true, false),
            ("dx += du A      (NN)", 1024, 576, 16, false, false),
        ]
        var rng = RNG(seed: 4)
        for (name, m, n, k, ta, tb) in shapes {
            let a = FloatBuffer(count: m * k), b = FloatBuffer(count: k * n), c = FloatBuffer(count: m * n)
            rng.fillNormal(a.pointer, count: a.count)
            rng.fillNormal(b.pointer, count: b.count)
            let t = measure(runs: 21) {
                MatMul.gemm(c.pointer, a.pointer, transA: ta, b.pointer, transB: tb, m: m, n: n, k: k, beta: 1)
            }
            print(
                "\(pad(name, 24)) \(pad(f1(2.0 * Double(m * n * k) / t.median / 1e9), 7))"
                    + " \(String(format: "%.1f", t.median * 1e6)) µs"
            )
        }
        // The row-parallel LowRank kernels on the same shapes.
        let (n, d, r) = (1024, 576, 16)
        let x = FloatBuffer(count: n * d), a = FloatBuffer(count: r * d), u = FloatBuffer(count: n * r),
            y = FloatBuffer(count: n * d)
        rng.fillNormal(x.pointer, count: x.count)
        rng.fillNormal(a.pointer, count: a.count)
        rng.fillNormal(u.pointer, count: u.count)
        let flops = 2.0 * Double(n * d * r)
        let tp = measure(runs: 21) {
            LowRank.project(out: u.pointer, input: x.pointer, factor: a.pointer, rows: n, features: d, rank: r)
        }
        print(
            "\(pad("LowRank.project x Aᵀ", 24)) \(pad(f1(flops / tp.median / 1e9), 7))"
                + " \(String(format: "%.1f", tp.median * 1e6)) µs"
        )
        let te = measure(runs: 21) {
            LowRank.expand(into: y.pointer, u.pointer, a.pointer, rows: n, features: d, rank: r, alpha: 0.5)
        }
        print(
            "\(pad("LowRank.expand += u W", 24)) \(pad(f1(flops / te.median / 1e9), 7))"
                + " \(String(format: "%.1f", te.median * 1e6)) µs"
        )
    }
}

extension KernelBenchmarks {
    /// The decode-time weight stream: y = x Wᵀ for one or 16 rows over SmolLM2-sized weights.
    static func gemv() {
        print("Few-row products (decode), GB/s of weights streamed")
        var rng = RNG(seed: 5)
        for (rows, outF, inF) in [(1, 49152, 576), (1, 1536, 576), (1, 576, 1536), (16, 49152, 576), (16, 1536, 576)] {
            let w = FloatBuffer(count: outF * inF), x = FloatBuffer(count: rows * inF),
                y = FloatBuffer(count: rows * outF)
            rng.fillNormal(w.pointer, count: w.count)
            rng.fillNormal(x.pointer, count: x.count)
            let t = measure(runs: 15) {
                Linear.forward(
                    out: y.pointer, input: x.pointer, weight: w.pointer, rows: rows, inFeatures: inF, outFeatures: outF)
            }
            let blas = measure(runs: 15) {
                MatMul.gemm(y.pointer, x.pointer, w.pointer, transB: true, m: rows, n: outF, k: inF)
            }
            print(
                "\(pad("\(rows)×\(outF)×\(inF)", 16)) \(pad(f1(Double(outF * inF * 4) / t.median / 1e9), 6)) GB/s "
                    + " \(String(format: "%.1f", t.median * 1e6)) µs "
                    + " \(f1(2.0 * Double(rows * outF * inF) / t.median / 1e9)) GFLOP/s   sgemm"
                    + " \(String(format: "%.1f", blas.median * 1e6)) µs"
            )
        }
        // The projections of one batch-16 decode step: 30 layers × (q, k, v, o, gate, up, down), each with its
        // own weights (425 MB, streamed from memory as in generation).
        let shapes = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]
        let layerWeights = (0..<30).map { _ in
            shapes.map { (o, i) -> FloatBuffer in
                let w = FloatBuffer(count: o * i)
                rng.fillNormal(w.pointer, count: w.count)
                return w
            }
        }
        let x = FloatBuffer(count: 16 * 1536), y = FloatBuffer(count: 16 * 1536)
        rng.fillNormal(x.pointer, count: x.count)
        // One decode step's projections at `rows` input rows: every layer's own weights (streamed from memory), or
        // one layer's weights 30 times (from cache: what the step costs beyond the stream).
        func projections(rows: Int, fromCache: Bool) -> Timing {
            measure(runs: 9) {
                for l in 0..<30 {
                    for (w, (o, i)) in zip(layerWeights[fromCache ? 0 : l], shapes) {
                        Linear.forward(
                            out: y.pointer, input: x.pointer, weight: w.pointer, rows: rows, inFeatures: i,
                            outFeatures: o)
                    }
                }
            }
        }
        let step = projections(rows: 16, fromCache: false), hot = projections(rows: 16, fromCache: true)
        // Batch 1: the weight stream alone (425 MB per step from memory), for the batch-1 --dense decode step.
        let step1 = projections(rows: 1, fromCache: false), hot1 = projections(rows: 1, fromCache: true)
        let bytes = Double(30 * shapes.reduce(0) { $0 + $1.0 * $1.1 } * 4)
        print(
            "decode step projections, 1 row × 30 layers × 7: \(String(format: "%.2f", step1.median * 1e3)) ms,"
                + " \(f1(bytes / step1.median / 1e9)) GB/s of weights (one layer's weights from cache:"
                + " \(String(format: "%.2f", hot1.median * 1e3)) ms)"
        )
        let flops = 2.0 * 16 * Double(30 * shapes.reduce(0) { $0 + $1.0 * $1.1 })
        print(
            "decode step projections, 16 rows × 30 layers × 7: \(String(format: "%.2f", step.median * 1e3)) ms,"
                + " \(f1(flops / step.median / 1e9)) GFLOP/s (one layer's weights from cache:"
                + " \(String(format: "%.2f", hot.median * 1e3)) ms, \(f1(flops / hot.median / 1e9)) GFLOP/s)"
        )
        // The same step with the weights in Q4_1 decode panels (what a kept-quantised SmolLM2 runs).
        let panelled = layerWeights.map { layer in
            zip(layer, shapes).map { w, s in
                QuantizedMatrix(
                    type: .q4_1, rows: s.0, columns: s.1,
                    bytes: QuantizedBenchmarks.quantize(w.pointer, rows: s.0, columns: s.1, type: .q4_1))
            }
        }
        let qStep = measure(runs: 9) {
            for layer in panelled {
                for q in layer { QuantizedLinear.forward(out: y.pointer, input: x.pointer, weight: q, rows: 16) }
            }
        }
        print(
            "  the same with Q4_1 decode panels "
                + "(\(panelled.joined().reduce(0) { $0 + $1.rows * $1.rowBytes } / 1_000_000) MB read):"
                + " \(String(format: "%.2f", qStep.median * 1e3)) ms, \(f1(flops / qStep.median / 1e9)) GFLOP/s"
        )
    }
}

extension KernelBenchmarks {
    /// Causal attention of one SmolLM2 layer at the training shape 4×256 (9 query heads, 3 kv heads,
    /// D = 64), forward and backward; GFLOP/s count the causal half only (the work a causal kernel needs).
    static func attention() {
        let (b, t, hq, hkv, d) = (4, 256, 9, 3, 64)
        let shape = AttentionShape(batch: b, queryLength: t, keyLength: t, queryHeads: hq, kvHeads: hkv, headDim: d)
        var rng = RNG(seed: 6)
        let q = FloatBuffer(count: b * t * hq * d), k = FloatBuffer(count: b * t * hkv * d),
            v = FloatBuffer(count: b * t * hkv * d)
        let o = FloatBuffer(count: q.count), dO = FloatBuffer(count: q.count), lse = FloatBuffer(count: b * hq * t)
        let dq = FloatBuffer(count: q.count), dk = FloatBuffer(count: k.count), dv = FloatBuffer(count: v.count)
        for buf in [q, k, v, dO] { rng.fillNormal(buf.pointer, count: buf.count) }
        // A long warm-up: right after start the second vCPU often runs at half speed for ~100 ms (seen as a
        // bimodal first measurement on this VM).
        let fwd = measure(warmup: 60, runs: 21) {
            Attention.forward(
                out: o.pointer, lse: lse.pointer, q: q.pointer, k: k.pointer, v: v.pointer, keyMask: nil, shape: shape)
        }
        let bwd = measure(runs: 21) {
            Attention.backward(
                dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, dOut: dO.pointer, out: o.pointer, lse: lse.pointer,
                q: q.pointer, k: k.pointer, v: v.pointer, keyMask: nil, shape: shape)
        }
        // Decode attention: 16 sequences, one query row each, 96 of 160 cached keys (the middle of a 32 + 128
        // generation) in KVCache's [B, Hkv, capacity, D] layout; one layer's cache (3.9 MB, cache-resident)
        // vs 30 layers' (118 MB, from DRAM, as in generation where the weights evict it between layers).
        let (db, cap, valid, layers) = (16, 160, 96, 30)
        let dshape = AttentionShape(
            batch: db, queryLength: 1, keyLength: valid, queryHeads: hq, kvHeads: hkv, headDim: d,
            kvBatchStride: cap * hkv * d, maskBatchStride: cap, kvRowStride: d, kvHeadStride: cap * d)
        let qd = FloatBuffer(count: db * hq * d), dout = FloatBuffer(count: db * hq * d)
        let caches = (0..<layers).map { _ in
            (FloatBuffer(count: db * cap * hkv * d), FloatBuffer(count: db * cap * hkv * d))
        }
        rng.fillNormal(qd.pointer, count: qd.count)
        for (kc, vc) in caches {
            rng.fillNormal(kc.pointer, count: kc.count); rng.fillNormal(vc.pointer, count: vc.count)
        }
        let hot = measure(warmup: 20, runs: 21) {
            for _ in 0..<layers {
                Attention.forwardDecode(
                    out: dout.pointer, q: qd.pointer, k: caches[0].0.pointer, v: caches[0].1.pointer, keyMask: nil,
                    shape: dshape)
            }
        }
        let cold = measure(warmup: 2, runs: 21) {
            for (kc, vc) in caches {
                Attention.forwardDecode(
                    out: dout.pointer, q: qd.pointer, k: kc.pointer, v: vc.pointer, keyMask: nil, shape: dshape)
            }
        }
        let bytes = Double(layers * db * valid * hkv * d * 4 * 2)
        print(
            "Decode attention, 16 rows × 30 layers, 96 keys: one layer's cache ×30"
                + " \(String(format: "%.2f", hot.median * 1e3)) ms; 30 layers' caches"
                + " \(String(format: "%.2f", cold.median * 1e3)) ms (\(f1(bytes / cold.median / 1e9)) GB/s of K and V)"
        )
        let causalFlops = 2.0 * Double(b * hq * t * t * d)  // QKᵀ and PV over the lower triangle: 2 × (T²/2 · D · 2)
        print("Causal attention, one layer at 4×256 (Hq 9, Hkv 3, D 64); ×30 layers = per training step")
        print(
            "forward   \(String(format: "%.2f", fwd.median * 1e3)) ms  \(f1(causalFlops / fwd.median / 1e9)) GFLOP/s"
                + " (causal)   ×30: \(String(format: "%.3f", 30 * fwd.median)) s"
        )
        print(
            "backward  \(String(format: "%.2f", bwd.median * 1e3)) ms  \(f1(2.5 * causalFlops / bwd.median / 1e9))"
                + " GFLOP/s (causal)   ×30: \(String(format: "%.3f", 30 * bwd.median)) s"
        )
    }
}

extension KernelBenchmarks {
    /// Every dense GEMM of one SmolLM2 full fine-tune step at 4×256 (attention excluded), with its count
    /// per step: where the step's GEMM time goes, ours (pool split) vs OpenBLAS's own threads.
    static func trainingGemms() {
        let t = 1024, threads = ThreadPool.shared.threadCount
        // (name, m, n, k, transA, transB, calls per step)
        let shapes: [(String, Int, Int, Int, Bool, Bool, Int)] = [
            ("fwd q/o      x Wᵀ", t, 576, 576, false, true, 60), ("fwd k/v      x Wᵀ", t, 192, 576, false, true, 60),
            ("fwd gate/up  x Wᵀ", t, 1536, 576, false, true, 60), ("fwd down     x Wᵀ", t, 576, 1536, false, true, 30),
            ("dx q/o      dy W", t, 576, 576, false, false, 60), ("dx k/v      dy W", t, 576, 192, false, false, 60),
            ("dx gate/up  dy W", t, 576, 1536, false, false, 60), ("dx down     dy W", t, 1536, 576, false, false, 30),
            ("dW q/o     dyᵀ x", 576, 576, t, true, false, 60), ("dW k/v     dyᵀ x", 192, 576, t, true, false, 60),
            ("dW gate/up dyᵀ x", 1536, 576, t, true, false, 60), ("dW down    dyᵀ x", 576, 1536, t, true, false, 30),
            ("lm_head fwd (chunk)", 256, 49152, 576, false, true, 4),
            ("lm_head dx (chunk)", 256, 576, 49152, false, false, 4),
            ("lm_head dW (chunk)", 49152, 576, 256, true, false, 4),
        ]
        print(
            "Training GEMMs per full fine-tune step at 4×256: GFLOP/s ours (mode \(MatMul.mode.rawValue)) and"
                + " OpenBLAS \(threads) threads, seconds per step"
        )
        var rng = RNG(seed: 7)
        var totalOurs = 0.0, totalBlas = 0.0, totalFlops = 0.0
        for (name, m, n, k, ta, tb, calls) in shapes {
            let a = FloatBuffer(count: m * k), b = FloatBuffer(count: k * n), c = FloatBuffer(count: m * n)
            rng.fillNormal(a.pointer, count: a.count)
            rng.fillNormal(b.pointer, count: b.count)
            let beta: Float = name.hasPrefix("dW") || name.hasPrefix("lm_head dW") ? 1 : 0
            let ours = measure(runs: 7) {
                MatMul.gemm(c.pointer, a.pointer, transA: ta, b.pointer, transB: tb, m: m, n: n, k: k, beta: beta)
            }.median
            openblas_set_num_threads(Int32(threads))
            let blas = measure(runs: 7) {
                cblas_sgemm(
                    CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, Int32(m), Int32(n),
                    Int32(k), 1,
                    a.pointer, Int32(ta ? m : k), b.pointer, Int32(tb ? k : n), beta, c.pointer, Int32(n))
            }.median
            openblas_set_num_threads(MatMul.mode == .poolSplit ? 1 : Int32(threads))
            usleep(200_000)
            let flops = 2.0 * Double(m * n * k)
            totalOurs += ours * Double(calls); totalBlas += blas * Double(calls); totalFlops += flops * Double(calls)
            print(
                "\(pad(name, 22)) \(pad("\(m)×\(n)×\(k)", 16)) ×\(pad("\(calls)", 3))"
                    + " \(pad(f1(flops / ours / 1e9), 6)) \(pad(f1(flops / blas / 1e9), 6))"
                    + " \(String(format: "%.3f s", ours * Double(calls)))"
            )
        }
        print(
            "total: ours \(String(format: "%.2f", totalOurs)) s (\(f1(totalFlops / totalOurs / 1e9)) GFLOP/s),"
                + " OpenBLAS threads \(String(format: "%.2f", totalBlas)) s"
        )
    }
}

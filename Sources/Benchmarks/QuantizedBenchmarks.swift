// `Benchmarks quantized`: products with GGUF-quantised weights (Q4_1, Q8_0) against fp32 `Linear.forward`
// at SmolLM2-135M shapes. GB/s counts weight bytes streamed per call (the quantity decoding is bound by).
// "hot" repeats one matrix (it may sit in L2/L3); "stream" rotates over copies totalling ≥ 96 MB, like a
// decode step walking through all layers (SmolLM2 streams 98 MB of Q4_1/Q8_0 or 538 MB of fp32 per token).
// Weights are random normals quantised here with ggml's reference rules (round to nearest).

import Foundation
import TensorCore

enum QuantizedBenchmarks {
    static func run() { run(shapes: 0..<shapes.count) }

    static let shapes = [(1, 49152, 576), (1, 1536, 576), (16, 49152, 576), (16, 1536, 576), (512, 1536, 576)]

    /// The rows of `shapes` at `indices` (one shape per process keeps a busy machine's noise to one line).
    static func run<S: Sequence<Int>>(shapes indices: S) {
        print(
            "Quantised linear (few-row kernel for M ≤ 16, dequantised tiles + sgemm above), threads ="
                + " \(ThreadPool.shared.threadCount), \(KernelDispatch.summary)"
        )
        print(
            "µs per call (median of 15 after 2 warm-ups); GB/s of weight bytes; stream = rotating over ≥ 96 MB of"
                + " copies"
        )
        print(
            "\(pad("M×O×I", 15)) \(pad("type", 5)) \(pad("hot µs", 9)) \(pad("GB/s", 6)) \(pad("stream µs", 10))"
                + " \(pad("GB/s", 6)) | \(pad("fp32 hot", 9)) \(pad("GB/s", 6)) \(pad("stream", 9)) \(pad("GB/s", 6)) |"
                + " speed-up hot, stream"
        )
        var rng = RNG(seed: 7)
        for (m, o, i) in indices.map({ shapes[$0] }) {
            let w = FloatBuffer(count: o * i), x = FloatBuffer(count: m * i), y = FloatBuffer(count: m * o)
            rng.fillNormal(w.pointer, count: w.count, std: 0.05)
            rng.fillNormal(x.pointer, count: x.count)
            let fpBytes = Double(o * i * 4)
            let fpCopies = copies(bytes: o * i * 4)
            let fpWeights =
                [w]
                + (1..<fpCopies).map { _ in
                    let c = FloatBuffer(count: o * i); c.pointer.update(from: w.pointer, count: o * i); return c
                }
            let fpHot = measure(runs: 15) {
                Linear.forward(
                    out: y.pointer, input: x.pointer, weight: w.pointer, rows: m, inFeatures: i, outFeatures: o)
            }.median
            let fpStream =
                measure(runs: 15) {
                    for c in fpWeights {
                        Linear.forward(
                            out: y.pointer, input: x.pointer, weight: c.pointer, rows: m, inFeatures: i, outFeatures: o)
                    }
                }.median / Double(fpCopies)
            for type in [QuantizedType.q4_1, .q8_0] {
                let bytes = quantize(w.pointer, rows: o, columns: i, type: type)
                let q = QuantizedMatrix(type: type, rows: o, columns: i, bytes: bytes)
                let qCopies = copies(bytes: q.byteCount)
                let qs = [q] + (1..<qCopies).map { _ in QuantizedMatrix(type: type, rows: o, columns: i, bytes: bytes) }
                let hot = measure(runs: 15) {
                    QuantizedLinear.forward(out: y.pointer, input: x.pointer, weight: q, rows: m)
                }.median
                let stream =
                    measure(runs: 15) {
                        for c in qs { QuantizedLinear.forward(out: y.pointer, input: x.pointer, weight: c, rows: m) }
                    }.median / Double(qCopies)
                let qBytes = Double(q.rows * q.rowBytes)  // the blocks (12–16 rows: their decode panels, as many bytes)
                print(
                    "\(pad("\(m)×\(o)×\(i)", 15)) \(pad(type.description, 5)) \(pad(f1(hot * 1e6), 9))"
                        + " \(pad(f1(qBytes / hot / 1e9), 6)) \(pad(f1(stream * 1e6), 10))"
                        + " \(pad(f1(qBytes / stream / 1e9), 6)) | \(pad(f1(fpHot * 1e6), 9))"
                        + " \(pad(f1(fpBytes / fpHot / 1e9), 6)) \(pad(f1(fpStream * 1e6), 9))"
                        + " \(pad(f1(fpBytes / fpStream / 1e9), 6)) |"
                        + " \(String(format: "%.2f×, %.2f×", fpHot / hot, fpStream / stream))"
                )
            }
        }
    }

    /// How many copies of a matrix of `bytes` make ≥ 96 MB (well past the 32 MB L3).
    private static func copies(bytes: Int) -> Int { max(1, (96 << 20) / max(bytes, 1) + 1) }

    /// ggml's reference quantisers (`quantize_row_q8_0_ref`, `quantize_row_q4_1_ref`) for [rows, columns] floats.
    static func quantize(_ w: UnsafePointer<Float>, rows: Int, columns: Int, type: QuantizedType) -> [UInt8] {
        precondition(type == .q4_1 || type == .q8_0, "only Q4_1 and Q8_0")
        var out: [UInt8] = []
        out.reserveCapacity(rows * type.rowByteCount(columns: columns))
        func append16(_ v: UInt16) { out.append(UInt8(v & 0xFF)); out.append(UInt8(v >> 8)) }
        for b in 0..<(rows * columns / 32) {
            let x = w + b * 32
            if type == .q8_0 {
                var amax: Float = 0
                for j in 0..<32 { amax = max(amax, abs(x[j])) }
                let d = amax / 127, id: Float = d != 0 ? 1 / d : 0
                append16(halfBits(d))
                for j in 0..<32 { out.append(UInt8(bitPattern: Int8(max(-127, min(127, (x[j] * id).rounded()))))) }
            } else {
                var lo = Float.infinity, hi = -Float.infinity
                for j in 0..<32 { lo = min(lo, x[j]); hi = max(hi, x[j]) }
                let d = (hi - lo) / 15, id: Float = d != 0 ? 1 / d : 0
                append16(halfBits(d))
                append16(halfBits(lo))
                for j in 0..<16 {
                    let q0 = UInt8(min(15, max(0, ((x[j] - lo) * id + 0.5).rounded(.down))))
                    let q1 = UInt8(min(15, max(0, ((x[j + 16] - lo) * id + 0.5).rounded(.down))))
                    out.append(q0 | q1 << 4)
                }
            }
        }
        return out
    }

    /// Float → IEEE fp16 bits, round to nearest even (normal range; tiny values flush to ±0).
    static func halfBits(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let e = Int((bits >> 23) & 0xFF) - 127 + 15
        if e <= 0 { return sign }
        if e >= 31 { return sign | 0x7C00 }
        let mantissa = bits & 0x7F_FFFF
        var h = UInt32(e) << 10 | mantissa >> 13
        let rest = mantissa & 0x1FFF
        if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) { h += 1 }  // a carry rounds into the exponent
        return sign | UInt16(h)
    }
}

// Finite-difference checks of every kernel's backward on small, odd shapes.

import Testing
import _CKernels
import _TestSupport

@testable import TensorCore

@Suite struct KernelGradientTests {
    @Test(arguments: [(1, 3, 4), (5, 7, 3), (4, 17, 9)])
    func linear(rows: Int, inF: Int, outF: Int) {
        var r = Rand(1)
        let x = r.buffer(rows * inF), w = r.buffer(outF * inF), y = FloatBuffer(count: rows * outF),
            wy = r.buffer(rows * outF)
        func loss() -> Double {
            Linear.forward(
                out: y.pointer, input: x.pointer, weight: w.pointer, rows: rows, inFeatures: inF, outFeatures: outF)
            return weightedSum(y.pointer, wy.pointer, rows * outF)
        }
        let dx = FloatBuffer(count: rows * inF), dw = FloatBuffer(count: outF * inF)
        Linear.backward(
            dInput: dx.pointer, dWeight: dw.pointer, dOut: wy.pointer, input: x.pointer, weight: w.pointer,
            rows: rows, inFeatures: inF, outFeatures: outF)
        expectClose(dx.pointer, numericGradient(x.pointer, count: rows * inF, loss), "dx")
        expectClose(dw.pointer, numericGradient(w.pointer, count: outF * inF, loss), "dW")
    }

    @Test(arguments: [(1, 4), (3, 17), (9, 33)])
    func rmsNorm(rows: Int, channels: Int) {
        var r = Rand(2)
        let x = r.buffer(rows * channels), w = r.buffer(channels), y = FloatBuffer(count: rows * channels)
        let wy = r.buffer(rows * channels), rstd = FloatBuffer(count: rows)
        func loss() -> Double {
            RMSNorm.forward(
                out: y.pointer, rstd: rstd.pointer, input: x.pointer, weight: w.pointer, rows: rows, channels: channels,
                epsilon: 1e-5)
            return weightedSum(y.pointer, wy.pointer, rows * channels)
        }
        _ = loss()
        let dx = FloatBuffer(count: rows * channels), dw = FloatBuffer(count: channels)
        RMSNorm.backward(
            dInput: dx.pointer, dWeight: dw.pointer, dOut: wy.pointer, input: x.pointer, weight: w.pointer,
            rstd: rstd.pointer, rows: rows, channels: channels)
        expectClose(dx.pointer, numericGradient(x.pointer, count: rows * channels, loss), "dx")
        expectClose(dw.pointer, numericGradient(w.pointer, count: channels, loss), "dw")
    }

    @Test(arguments: [(3, 2, 8), (5, 3, 6)])
    func rope(tokens: Int, heads: Int, dim: Int) {
        var r = Rand(3)
        let table = RoPETable(headDim: dim, base: 10_000, maxPositions: 64)
        let n = tokens * heads * dim
        let x = r.buffer(n), y = FloatBuffer(count: n), wy = r.buffer(n)
        let positions: [Int32] = (0..<tokens).map { Int32($0 * 7 + 1) }
        func loss() -> Double {
            y.pointer.update(from: x.pointer, count: n)
            positions.withUnsafeBufferPointer {
                table.apply(y.pointer, positions: $0.baseAddress!, tokens: tokens, heads: heads)
            }
            return weightedSum(y.pointer, wy.pointer, n)
        }
        let dx = FloatBuffer(count: n)
        dx.pointer.update(from: wy.pointer, count: n)
        positions.withUnsafeBufferPointer {
            table.applyBackward(dx.pointer, positions: $0.baseAddress!, tokens: tokens, heads: heads)
        }
        expectClose(dx.pointer, numericGradient(x.pointer, count: n, loss), "dx")
    }

    @Test(arguments: KernelDispatch.availablePaths)
    func swigluAndSilu(path: KernelPath) {
        rk_set_thread_path(path.rawValue)
        defer { rk_set_thread_path(-1) }
        var r = Rand(4)
        let n = 37
        let g = r.buffer(n, scale: 2), u = r.buffer(n), y = FloatBuffer(count: n), wy = r.buffer(n)
        func loss() -> Double {
            SwiGLU.forward(out: y.pointer, gate: g.pointer, up: u.pointer, count: n)
            return weightedSum(y.pointer, wy.pointer, n)
        }
        let dg = FloatBuffer(count: n), du = FloatBuffer(count: n)
        SwiGLU.backward(dGate: dg.pointer, dUp: du.pointer, dOut: wy.pointer, gate: g.pointer, up: u.pointer, count: n)
        expectClose(dg.pointer, numericGradient(g.pointer, count: n, loss), "dgate")
        expectClose(du.pointer, numericGradient(u.pointer, count: n, loss), "dup")

        func siluLoss() -> Double {
            SiLU.forward(out: y.pointer, input: g.pointer, count: n)
            return weightedSum(y.pointer, wy.pointer, n)
        }
        let dx = FloatBuffer(count: n)
        SiLU.backward(dInput: dx.pointer, dOut: wy.pointer, input: g.pointer, count: n)
        expectClose(dx.pointer, numericGradient(g.pointer, count: n, siluLoss), "silu dx")
    }

    @Test(arguments: [(2, 5), (3, 19), (1, 40)])
    func softmaxAndLogSoftmax(rows: Int, cols: Int) {
        var r = Rand(5)
        let n = rows * cols
        let x = r.buffer(n, scale: 2), y = FloatBuffer(count: n), wy = r.buffer(n), dx = FloatBuffer(count: n)
        func loss() -> Double {
            Softmax.forward(out: y.pointer, input: x.pointer, rows: rows, columns: cols)
            return weightedSum(y.pointer, wy.pointer, n)
        }
        _ = loss()
        Softmax.backward(dInput: dx.pointer, dOut: wy.pointer, out: y.pointer, rows: rows, columns: cols)
        expectClose(dx.pointer, numericGradient(x.pointer, count: n, loss), "softmax dx")

        func logLoss() -> Double {
            LogSoftmax.forward(out: y.pointer, input: x.pointer, rows: rows, columns: cols)
            return weightedSum(y.pointer, wy.pointer, n)
        }
        _ = logLoss()
        LogSoftmax.backward(dInput: dx.pointer, dOut: wy.pointer, out: y.pointer, rows: rows, columns: cols)
        expectClose(dx.pointer, numericGradient(x.pointer, count: n, logLoss), "log-softmax dx")
    }

    @Test func embedding() {
        var r = Rand(6)
        let v = 7, c = 5
        let ids: [Int32] = [3, 1, 3, 6]
        let table = r.buffer(v * c), y = FloatBuffer(count: ids.count * c), wy = r.buffer(ids.count * c)
        func loss() -> Double {
            ids.withUnsafeBufferPointer {
                Embedding.forward(
                    out: y.pointer, ids: $0.baseAddress!, table: table.pointer, tokens: ids.count, channels: c,
                    vocabulary: v)
            }
            return weightedSum(y.pointer, wy.pointer, ids.count * c)
        }
        let dt = FloatBuffer(count: v * c)
        ids.withUnsafeBufferPointer {
            Embedding.backward(
                dTable: dt.pointer, dOut: wy.pointer, ids: $0.baseAddress!, tokens: ids.count, channels: c)
        }
        expectClose(dt.pointer, numericGradient(table.pointer, count: v * c, loss), "dTable")
    }

    /// Chunked vocabulary log-probs: backward (recomputing chunks) and the fused pass, ignored targets included.
    @Test(arguments: [1, 2, 64])
    func tokenLogProbs(chunkRows: Int) {
        var r = Rand(7)
        let n = 5, c = 6, v = 11
        let h = r.buffer(n * c), w = r.buffer(v * c)
        let targets: [Int32] = [3, -100, 10, 0, 7]
        let g = r.buffer(n), logp = FloatBuffer(count: n), lse = FloatBuffer(count: n)
        func loss() -> Double {
            targets.withUnsafeBufferPointer { t in
                TokenLogProbs.forward(
                    logProbs: logp.pointer, lse: lse.pointer, hidden: h.pointer, weight: .dense(w.pointer),
                    targets: t.baseAddress!, rows: n, channels: c, vocabulary: v, chunkRows: chunkRows)
            }
            return weightedSum(logp.pointer, g.pointer, n)
        }
        _ = loss()
        #expect(logp.pointer[1] == 0, "ignored target has log-prob 0")
        let dh = FloatBuffer(count: n * c), dw = FloatBuffer(count: v * c)
        targets.withUnsafeBufferPointer { t in
            TokenLogProbs.backward(
                dHidden: dh.pointer, dWeight: dw.pointer, dLogProbs: g.pointer, hidden: h.pointer,
                weight: .dense(w.pointer),
                targets: t.baseAddress!, lse: lse.pointer, rows: n, channels: c, vocabulary: v, chunkRows: chunkRows)
        }
        expectClose(dh.pointer, numericGradient(h.pointer, count: n * c, loss), "dh")
        expectClose(dw.pointer, numericGradient(w.pointer, count: v * c, loss), "dW")

        _ = loss()  // refresh logp at the unperturbed point
        let dh2 = FloatBuffer(count: n * c), dw2 = FloatBuffer(count: v * c), logp2 = FloatBuffer(count: n)
        let total = targets.withUnsafeBufferPointer { t in
            TokenLogProbs.forwardBackward(
                dHidden: dh2.pointer, dWeight: dw2.pointer, logProbs: logp2.pointer, dLogProbs: g.pointer,
                hidden: h.pointer, weight: .dense(w.pointer), targets: t.baseAddress!, rows: n, channels: c,
                vocabulary: v, chunkRows: chunkRows)
        }
        for i in 0..<(n * c) { #expect(abs(dh2.pointer[i] - dh.pointer[i]) <= 1e-6) }
        for i in 0..<(v * c) { #expect(abs(dw2.pointer[i] - dw.pointer[i]) <= 1e-6) }
        var sum = 0.0
        for i in 0..<n { #expect(logp2.pointer[i] == logp.pointer[i]); sum += Double(logp.pointer[i]) }
        #expect(abs(total - sum) <= 1e-9)
    }
}

// Attention: forward against a scalar reference, and finite-difference gradients, with grouped-query
// heads, right and left padding masks, and a query block shorter than the keys (KV-cache decoding).

import Foundation
import Testing
import _CKernels
import _TestSupport

@testable import TensorCore

@Suite struct AttentionTests {
    enum Padding: CaseIterable { case none, right, left }

    struct Case: CustomTestStringConvertible, Sendable {
        var b, tq, tk, hq, hkv, d: Int
        var padding: Padding
        var queryBlock = Attention.queryBlock
        var testDescription: String { "B\(b) Tq\(tq) Tk\(tk) Hq\(hq) Hkv\(hkv) D\(d) \(padding) block \(queryBlock)" }
    }

    static let cases: [Case] = [
        Case(b: 1, tq: 3, tk: 3, hq: 2, hkv: 2, d: 4, padding: .none),
        Case(b: 2, tq: 5, tk: 5, hq: 4, hkv: 2, d: 4, padding: .right),
        Case(b: 2, tq: 5, tk: 5, hq: 3, hkv: 1, d: 6, padding: .left),
        Case(b: 2, tq: 2, tk: 6, hq: 4, hkv: 2, d: 4, padding: .left),
        // Several causal query blocks (uneven last block), with and without a cached-key offset.
        Case(b: 2, tq: 7, tk: 7, hq: 4, hkv: 2, d: 4, padding: .right, queryBlock: 3),
        Case(b: 2, tq: 5, tk: 8, hq: 3, hkv: 1, d: 4, padding: .left, queryBlock: 2),
        // D a multiple of 16: the fused kernels (16-row blocks, a partial last block, cached-key offset).
        Case(b: 1, tq: 5, tk: 5, hq: 2, hkv: 1, d: 16, padding: .none),
        Case(b: 2, tq: 20, tk: 20, hq: 4, hkv: 2, d: 16, padding: .left),
        Case(b: 2, tq: 18, tk: 23, hq: 3, hkv: 1, d: 32, padding: .right),
    ]

    /// Key mask: batch row 1 gets two padded keys (at the end or the start).
    static func mask(_ c: Case) -> [Float]? {
        if c.padding == .none { return nil }
        var m = [Float](repeating: 0, count: c.b * c.tk)
        for j in 0..<2 { m[1 * c.tk + (c.padding == .right ? c.tk - 1 - j : j)] = -.infinity }
        return m
    }

    /// Scalar reference in Double.
    static func reference(_ c: Case, q: [Float], k: [Float], v: [Float], mask: [Float]?) -> [Float] {
        var out = [Float](repeating: 0, count: c.b * c.tq * c.hq * c.d)
        let group = c.hq / c.hkv
        for b in 0..<c.b {
            for h in 0..<c.hq {
                for t in 0..<c.tq {
                    let pos = t + c.tk - c.tq
                    var s = [Double](repeating: -.infinity, count: c.tk)
                    for j in 0...pos {
                        var dot = 0.0
                        for i in 0..<c.d {
                            dot +=
                                Double(q[((b * c.tq + t) * c.hq + h) * c.d + i])
                                * Double(k[((b * c.tk + j) * c.hkv + h / group) * c.d + i])
                        }
                        s[j] = dot / Double(c.d).squareRoot() + Double(mask?[b * c.tk + j] ?? 0)
                    }
                    let m = s.max()!
                    if m == -.infinity { continue }
                    let e = s.map { exp($0 - m) }, z = e.reduce(0, +)
                    for i in 0..<c.d {
                        var acc = 0.0
                        for j in 0..<c.tk {
                            acc += e[j] / z * Double(v[((b * c.tk + j) * c.hkv + h / group) * c.d + i])
                        }
                        out[((b * c.tq + t) * c.hq + h) * c.d + i] = Float(acc)
                    }
                }
            }
        }
        return out
    }

    @Test(arguments: cases, KernelDispatch.availablePaths)
    func forwardMatchesReference(_ c: Case, path: KernelPath) {
        rk_set_thread_path(path.rawValue)
        defer { rk_set_thread_path(-1) }
        var r = Rand(11)
        let q = r.buffer(c.b * c.tq * c.hq * c.d), k = r.buffer(c.b * c.tk * c.hkv * c.d),
            v = r.buffer(c.b * c.tk * c.hkv * c.d)
        let out = FloatBuffer(count: q.count), lse = FloatBuffer(count: c.b * c.hq * c.tq)
        let mask = Self.mask(c)
        let shape = AttentionShape(
            batch: c.b, queryLength: c.tq, keyLength: c.tk, queryHeads: c.hq, kvHeads: c.hkv, headDim: c.d)
        mask.withOptionalPointer {
            Attention.forward(
                out: out.pointer, lse: lse.pointer, q: q.pointer, k: k.pointer, v: v.pointer, keyMask: $0, shape: shape,
                queryBlock: c.queryBlock)
        }
        let expected = Self.reference(c, q: q.array, k: k.array, v: v.array, mask: mask)
        for i in 0..<expected.count { #expect(abs(out.pointer[i] - expected[i]) <= 1e-5, "element \(i)") }
    }

    /// The decoding kernel (Tq ≤ 4) on every path the CPU has: query-head groups of 1–6 sharing a KV head
    /// (the AVX-512 kernels take 4, 3, 2 or 1 heads of D = 64, 2 or 1 of D = 128, one of D = 256, any other
    /// multiple of 16 one at a time; the AVX2 kernel any multiple of 64; other sizes run portable code).
    static let decodeCases: [Case] = [
        Case(b: 1, tq: 3, tk: 3, hq: 2, hkv: 2, d: 4, padding: .none),
        Case(b: 2, tq: 2, tk: 6, hq: 4, hkv: 2, d: 4, padding: .left),
        Case(b: 2, tq: 1, tk: 9, hq: 6, hkv: 2, d: 32, padding: .left),
        Case(b: 2, tq: 4, tk: 7, hq: 3, hkv: 1, d: 64, padding: .right),
        Case(b: 2, tq: 1, tk: 13, hq: 10, hkv: 2, d: 64, padding: .left),
        Case(b: 1, tq: 2, tk: 11, hq: 12, hkv: 2, d: 64, padding: .none),
        Case(b: 2, tq: 1, tk: 10, hq: 6, hkv: 2, d: 128, padding: .right),
        Case(b: 1, tq: 1, tk: 5, hq: 2, hkv: 1, d: 256, padding: .none),
        Case(b: 2, tq: 1, tk: 8, hq: 4, hkv: 2, d: 48, padding: .left),
    ]

    @Test(arguments: decodeCases, KernelDispatch.availablePaths)
    func decodeMatchesReference(_ c: Case, path: KernelPath) {
        var r = Rand(14)
        let q = r.buffer(c.b * c.tq * c.hq * c.d), k = r.buffer(c.b * c.tk * c.hkv * c.d),
            v = r.buffer(c.b * c.tk * c.hkv * c.d)
        let out = FloatBuffer(count: q.count)
        let mask = Self.mask(c)
        let expected = Self.reference(c, q: q.array, k: k.array, v: v.array, mask: mask)
        // The [B, T, Hkv, D] layout, then a KV cache's [B, Hkv, capacity, D] with capacity > Tk.
        let cap = c.tk + 3
        let kc = FloatBuffer(count: c.b * c.hkv * cap * c.d), vc = FloatBuffer(count: kc.count)
        for b in 0..<c.b {
            for h in 0..<c.hkv {
                for t in 0..<c.tk {
                    for i in 0..<c.d {
                        kc.pointer[((b * c.hkv + h) * cap + t) * c.d + i] =
                            k.pointer[((b * c.tk + t) * c.hkv + h) * c.d + i]
                        vc.pointer[((b * c.hkv + h) * cap + t) * c.d + i] =
                            v.pointer[((b * c.tk + t) * c.hkv + h) * c.d + i]
                    }
                }
            }
        }
        let layouts: [(String, AttentionShape, FloatBuffer, FloatBuffer)] = [
            (
                "rows",
                AttentionShape(
                    batch: c.b, queryLength: c.tq, keyLength: c.tk, queryHeads: c.hq, kvHeads: c.hkv, headDim: c.d), k,
                v
            ),
            (
                "cache",
                AttentionShape(
                    batch: c.b, queryLength: c.tq, keyLength: c.tk, queryHeads: c.hq, kvHeads: c.hkv, headDim: c.d,
                    kvBatchStride: c.hkv * cap * c.d, kvRowStride: c.d, kvHeadStride: cap * c.d), kc, vc
            ),
        ]
        for (name, shape, kb, vb) in layouts {
            out.zero()
            // Inside a parallel body the pool runs nested loops serially on the calling thread, so the path
            // forced on this thread is the one that runs (or run serially when the pool is busy elsewhere).
            parallelFor(2, cost: ThreadPool.wakeWorthyUnits) { r in
                guard r.contains(0) else { return }
                rk_set_thread_path(path.rawValue)
                mask.withOptionalPointer {
                    Attention.forwardDecode(
                        out: out.pointer, q: q.pointer, k: kb.pointer, v: vb.pointer, keyMask: $0, shape: shape)
                }
                rk_set_thread_path(-1)
            }
            var worst: Float = 0
            for i in 0..<expected.count { worst = max(worst, abs(out.pointer[i] - expected[i])) }
            #expect(worst <= 1e-5, "\(name) layout: largest error \(worst)")
        }
    }

    @Test(arguments: cases, KernelDispatch.availablePaths)
    func gradients(_ c: Case, path: KernelPath) {
        rk_set_thread_path(path.rawValue)
        defer { rk_set_thread_path(-1) }
        var r = Rand(12)
        let q = r.buffer(c.b * c.tq * c.hq * c.d), k = r.buffer(c.b * c.tk * c.hkv * c.d),
            v = r.buffer(c.b * c.tk * c.hkv * c.d)
        let out = FloatBuffer(count: q.count), lse = FloatBuffer(count: c.b * c.hq * c.tq), w = r.buffer(q.count)
        let mask = Self.mask(c)
        let shape = AttentionShape(
            batch: c.b, queryLength: c.tq, keyLength: c.tk, queryHeads: c.hq, kvHeads: c.hkv, headDim: c.d)
        func loss() -> Double {
            mask.withOptionalPointer {
                Attention.forward(
                    out: out.pointer, lse: lse.pointer, q: q.pointer, k: k.pointer, v: v.pointer, keyMask: $0,
                    shape: shape, queryBlock: c.queryBlock)
            }
            return weightedSum(out.pointer, w.pointer, q.count)
        }
        _ = loss()
        let dq = FloatBuffer(count: q.count), dk = FloatBuffer(count: k.count), dv = FloatBuffer(count: v.count)
        mask.withOptionalPointer {
            Attention.backward(
                dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, dOut: w.pointer, out: out.pointer, lse: lse.pointer,
                q: q.pointer, k: k.pointer, v: v.pointer, keyMask: $0, shape: shape, queryBlock: c.queryBlock)
        }
        expectClose(dq.pointer, numericGradient(q.pointer, count: q.count, loss), "dq")
        expectClose(dk.pointer, numericGradient(k.pointer, count: k.count, loss), "dk")
        expectClose(dv.pointer, numericGradient(v.pointer, count: v.count, loss), "dv")
    }

    /// D = 6 takes the GEMM blocks, D = 16 the fused kernel.
    @Test(arguments: [6, 16])
    func fullyMaskedRowsOutputZero(d: Int) {
        let c = Case(b: 2, tq: 5, tk: 5, hq: 3, hkv: 1, d: d, padding: .left)
        var r = Rand(13)
        let q = r.buffer(c.b * c.tq * c.hq * c.d), k = r.buffer(c.b * c.tk * c.d), v = r.buffer(c.b * c.tk * c.d)
        let out = FloatBuffer(count: q.count), lse = FloatBuffer(count: c.b * c.hq * c.tq)
        let shape = AttentionShape(
            batch: c.b, queryLength: c.tq, keyLength: c.tk, queryHeads: c.hq, kvHeads: c.hkv, headDim: c.d)
        Self.mask(c).withOptionalPointer {
            Attention.forward(
                out: out.pointer, lse: lse.pointer, q: q.pointer, k: k.pointer, v: v.pointer, keyMask: $0, shape: shape)
        }
        // Batch row 1, query 0 sees only key 0, which is padding.
        for i in 0..<(c.hq * c.d) { #expect(out.pointer[(1 * c.tq + 0) * c.hq * c.d + i] == 0) }
        for h in 0..<c.hq { #expect(lse.pointer[(1 * c.hq + h) * c.tq + 0] == -.infinity) }
        #expect(!out.array.contains { $0.isNaN })
    }
}

extension Optional where Wrapped == [Float] {
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .none: body(nil)
        case let .some(a): a.withUnsafeBufferPointer { body($0.baseAddress) }
        }
    }
}

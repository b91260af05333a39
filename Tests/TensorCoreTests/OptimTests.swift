// AdamW against its closed form, clipping, schedules, RNG reproducibility and the thread pool.

import Foundation
import Testing
import _CKernels
import _TestSupport

@testable import TensorCore

@Suite struct OptimTests {
    /// Two AdamW steps on known gradients against the formulas of Loshchilov & Hutter (Alg. 2), in Double.
    @Test func adamWMatchesClosedForm() {
        let store = ParameterStore(layout: [("a", [3]), ("b", [2, 2])], trainable: true)
        let p0: [Float] = [0.5, -1, 2, 0.1, 0.2, -0.3, 4]
        let grads: [[Float]] = [[0.1, -0.2, 0.3, 1, -1, 0.5, 0], [0.2, 0.2, -0.1, -1, 2, 0.25, 1e-3]]
        let cfg = AdamWConfig(beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1)
        for (i, e) in store.entries.enumerated() {
            for j in 0..<e.count { store.values.pointer[e.offset + j] = p0[(i == 0 ? 0 : 3) + j] }
        }
        let opt = AdamW(store: store, config: cfg)
        var p = p0.map(Double.init), m = [Double](repeating: 0, count: 7), v = m
        let lr = 0.01
        for (step, g) in grads.enumerated() {
            for (i, e) in store.entries.enumerated() {
                for j in 0..<e.count { store.gradients!.pointer[e.offset + j] = g[(i == 0 ? 0 : 3) + j] }
            }
            opt.update(learningRate: Float(lr))
            let t = Double(step + 1)
            for i in 0..<7 {
                let gi = Double(g[i])
                p[i] *= 1 - lr * 0.1
                m[i] = 0.9 * m[i] + 0.1 * gi
                v[i] = 0.99 * v[i] + 0.01 * gi * gi
                p[i] -= lr * (m[i] / (1 - pow(0.9, t))) / ((v[i] / (1 - pow(0.99, t))).squareRoot() + 1e-8)
            }
        }
        let got = [
            store.value("a")[0], store.value("a")[1], store.value("a")[2],
            store.value("b")[0], store.value("b")[1], store.value("b")[2], store.value("b")[3],
        ]
        for i in 0..<7 { #expect(abs(Double(got[i]) - p[i]) <= 1e-6, "parameter \(i): \(got[i]) vs \(p[i])") }
    }

    /// Clipping folded into the update (gradientScale) and zeroing while reading give bit-identical
    /// parameters and moments to clip-then-update, and leave zero gradients; entries of odd sizes make
    /// the parallel ranges cut through entries with different weight decay.
    @Test func fusedClipAndZeroingMatchSeparateSteps() {
        let layout: [(String, [Int])] = [("a", [5000]), ("norm", [37]), ("b", [3, 1111]), ("c", [4099])]
        let s1 = ParameterStore(layout: layout, trainable: true), s2 = ParameterStore(layout: layout, trainable: true)
        var r = Rand(5)
        let total = s1.values.count
        let cfg = AdamWConfig(weightDecay: 0.1)
        let o1 = AdamW(store: s1, config: cfg, decayFilter: { $0 != "norm" })
        let o2 = AdamW(store: s2, config: cfg, decayFilter: { $0 != "norm" })
        let p0 = r.buffer(total)
        s1.values.pointer.update(from: p0.pointer, count: total)
        s2.values.pointer.update(from: p0.pointer, count: total)
        for step in 0..<3 {
            let g = r.buffer(total)  // gradients only inside entries: the alignment padding stays zero, as in training
            Elementwise.scale(g.pointer, by: Float(step + 1) * 0.05, count: total)
            var inside = [Bool](repeating: false, count: total)
            for e in s1.entries { for j in e.offset..<(e.offset + e.count) { inside[j] = true } }
            for j in 0..<total where !inside[j] { g.pointer[j] = 0 }
            s1.gradients!.pointer.update(from: g.pointer, count: total)
            s2.gradients!.pointer.update(from: g.pointer, count: total)
            let n1 = GradientClipping.clip([s1], maxNorm: 1)
            o1.update(learningRate: 1e-3)
            let (n2, factor) = GradientClipping.clipFactor([s2], maxNorm: 1)
            #expect(n1 == n2)
            o2.update(learningRate: 1e-3, gradientScale: factor, zeroingGradients: true)
            for i in 0..<total {
                #expect(s1.values.pointer[i].bitPattern == s2.values.pointer[i].bitPattern, "step \(step) value \(i)")
                #expect(
                    o1.m.pointer[i].bitPattern == o2.m.pointer[i].bitPattern
                        && o1.v.pointer[i].bitPattern == o2.v.pointer[i].bitPattern)
                #expect(s2.gradients!.pointer[i] == 0)
                if s1.values.pointer[i].bitPattern != s2.values.pointer[i].bitPattern { return }
            }
        }
    }

    @Test func clippingScalesToMaxNorm() {
        let store = ParameterStore(layout: [("a", [4])], trainable: true)
        let g: [Float] = [3, 4, 0, 12]  // norm 13
        for i in 0..<4 { store.gradients!.pointer[i] = g[i] }
        let before = GradientClipping.clip([store], maxNorm: 1.3)
        #expect(abs(before - 13) < 1e-5)
        #expect(abs(GradientClipping.globalNorm([store]) - 1.3) < 1e-5)
        #expect(abs(store.gradients!.pointer[3] - 1.2) < 1e-5)
        // Below the threshold nothing changes.
        #expect(abs(GradientClipping.clip([store], maxNorm: 10) - 1.3) < 1e-5)
        #expect(abs(store.gradients!.pointer[3] - 1.2) < 1e-5)
    }

    @Test func schedules() {
        let lin = LRSchedule(kind: .linear, peak: 1, warmupSteps: 10, totalSteps: 110)
        #expect(lin.learningRate(at: 0) == 0)
        #expect(abs(lin.learningRate(at: 5) - 0.5) < 1e-7)
        #expect(lin.learningRate(at: 10) == 1)
        #expect(abs(lin.learningRate(at: 60) - 0.5) < 1e-6)
        #expect(lin.learningRate(at: 110) == 0)
        let cos = LRSchedule(kind: .cosine, peak: 2, warmupSteps: 0, totalSteps: 100)
        #expect(cos.learningRate(at: 0) == 2)
        #expect(abs(cos.learningRate(at: 50) - 1) < 1e-6)
        #expect(abs(cos.learningRate(at: 100)) < 1e-6)
        #expect(LRSchedule(kind: .constant, peak: 3, warmupSteps: 2, totalSteps: 10).learningRate(at: 7) == 3)
    }

    @Test func rngIsReproducibleAndWellSpread() {
        var a = RNG(seed: 42), b = RNG(seed: 42), c = RNG(seed: 43)
        let sa = (0..<100).map { _ in a.next() }, sb = (0..<100).map { _ in b.next() },
            sc = (0..<100).map { _ in c.next() }
        #expect(sa == sb)
        #expect(sa != sc)
        // Known-answer: xoshiro256** from SplitMix64(0) state (fixed so a refactor cannot silently change streams).
        var z = RNG(seed: 0)
        let first = z.next()
        var z2 = RNG(seed: 0)
        #expect(z2.next() == first)
        var n = RNG(seed: 7)
        let xs = (0..<20000).map { _ in Double(n.normal()) }
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
        #expect(abs(mean) < 0.03 && abs(variance - 1) < 0.05)
    }

    @Test func parallelForCoversEveryIndexOnce() {
        for count in [0, 1, 2, 3, 17, 1000] {
            let hits = FloatBuffer(count: max(count, 1))
            let p = hits.pointer
            for _ in 0..<50 { parallelFor(count) { r in for i in r { p[i] += 1 } } }
            for i in 0..<count { #expect(p[i] == 50) }
        }
        // Nested calls run serially instead of deadlocking.
        let outer = FloatBuffer(count: 8)
        let op = outer.pointer
        parallelFor(8) { r in for i in r { parallelFor(4) { inner in for _ in inner { op[i] += 1 } } } }
        #expect(outer.array == [Float](repeating: 4, count: 8))
    }

    /// A loop run serially (the pool busy with another caller, or parked for a small job) gets the same ranges as
    /// one the helpers share: kernels that tile rows round differently at a range's edge then give the same bits
    /// whether or not the pool was free (a resumed run equal to an uninterrupted one while tests run beside it).
    @Test func serialLoopsRunTheRangesAParallelOneWould() {
        let pool = ThreadPool.shared
        final class Ranges: @unchecked Sendable {
            var list: [Range<Int>] = []
            let lock = NSLock()
            func add(_ r: Range<Int>) { lock.withLock { list.append(r) } }
        }
        for count in [2, 7, 1000] {
            let free = Ranges(), busy = Ranges(), small = Ranges()
            pool.parallelFor(count, cost: Int.max / 2) { free.add($0) }
            pool.parallelFor(pool.threadCount, cost: Int.max / 2) { r in  // inside a parallel body the pool is busy
                if r.lowerBound == 0 { pool.parallelFor(count, cost: Int.max / 2) { busy.add($0) } }
            }
            pool.parallelFor(count, cost: 1) { small.add($0) }  // too small to wake a parked helper
            let threads = min(pool.threadCount, count)
            let expected = (0..<threads).map { (count * $0 / threads)..<(count * ($0 + 1) / threads) }
            #expect(free.list.sorted { $0.lowerBound < $1.lowerBound } == expected, "count \(count)")
            // A small loop may still find the helpers spinning from the loops above and share out: any order.
            #expect(busy.list == expected, "count \(count)")
            #expect(small.list.sorted { $0.lowerBound < $1.lowerBound } == expected, "count \(count)")
        }
    }

    /// The caller takes a helper's chunk when the helper has not started it (tiny jobs: often; longer ones:
    /// rarely): over many jobs of both kinds on a private pool, every index still runs exactly once.
    @Test func chunksTakenFromLateHelpersRunOnce() {
        let pool = ThreadPool(helpers: 1)
        let hits = FloatBuffer(count: 64)
        let p = hits.pointer
        for job in 0..<20_000 {
            let count = 2 + job % 63, slow = job % 7 == 0
            pool.parallelFor(count, cost: Int.max / 2) { r in
                for i in r {
                    if slow { for _ in 0..<200 { rk_cpu_relax() } }
                    p[i] += 1
                }
            }
        }
        var expected = [Float](repeating: 0, count: 64)
        for job in 0..<20_000 { for i in 0..<(2 + job % 63) { expected[i] += 1 } }
        #expect(hits.array == expected)
    }

    /// parallelForClaimed's chunks: each worker claims its own contiguous share in order, then takes over what is
    /// left of the others' (a worker held up in its share leaves the rest to the others).
    @Test func claimedSharesRunInOrderAndAreTakenOver() {
        let claims = ClaimedShares(count: 10, chunk: 2, shares: 2)  // shares [0, 5) and [5, 10)
        #expect(claims.next(worker: 0) == 0..<2)
        #expect(claims.next(worker: 1) == 5..<7)  // then held up
        #expect(claims.next(worker: 0) == 2..<4)
        #expect(claims.next(worker: 0) == 4..<5)  // the end of its share
        #expect(claims.next(worker: 0) == 7..<9)  // the rest of worker 1's share
        #expect(claims.next(worker: 1) == 9..<10)
        #expect(claims.next(worker: 1) == nil && claims.next(worker: 0) == nil)
    }

    /// parallelForClaimed: every index once, whatever the chunk size.
    @Test func claimedChunksCoverEveryIndexOnce() {
        for (count, chunk) in [(0, 1), (1, 1), (17, 1), (17, 5), (1000, 7), (1000, 5000)] {
            let hits = FloatBuffer(count: max(count, 1))
            let p = hits.pointer
            for _ in 0..<20 { parallelForClaimed(count, chunk: chunk) { r in for i in r { p[i] += 1 } } }
            for i in 0..<count { #expect(p[i] == 20, "count \(count) chunk \(chunk) index \(i)") }
        }
    }
}

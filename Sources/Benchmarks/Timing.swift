// Timing helpers: warm-ups, then the median (and p10/p90) of N timed calls.

import Foundation
import TensorCore

struct Timing {
    let median: Double
    let p10: Double
    let p90: Double
}

func measure(warmup: Int = 2, runs: Int = 9, _ body: () throws -> Void) rethrows -> Timing {
    for _ in 0..<warmup { try body() }
    var times: [Double] = []
    for _ in 0..<runs {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    times.sort()
    return Timing(median: times[times.count / 2], p10: times[times.count / 10], p90: times[times.count * 9 / 10])
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
func f1(_ x: Double) -> String { String(format: "%.1f", x) }

/// Keeps both cores busy for `seconds` before anything is measured: on this VM a core that has been idle
/// runs the first ~0.1–1 s at about half speed, which otherwise lands in whichever figure comes first.
func warmUpCores(seconds: Double = 1.5) {
    let n = 512
    let a = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
    let start = DispatchTime.now().uptimeNanoseconds
    while Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds {
        MatMul.gemm(c.pointer, a.pointer, a.pointer, m: n, n: n, k: n)
    }
}

// Timing helpers: warm-ups, then the median (and p10/p90) of N timed calls.

import Foundation

struct Timing {
    let median: Double
    let p10: Double
    let p90: Double
}

func measure(warmup: Int = 2, runs: Int = 9, _ body: () -> Void) -> Timing {
    for _ in 0..<warmup { body() }
    var times: [Double] = []
    for _ in 0..<runs {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    times.sort()
    return Timing(median: times[times.count / 2], p10: times[times.count / 10], p90: times[times.count * 9 / 10])
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
func f1(_ x: Double) -> String { String(format: "%.1f", x) }

// The process's peak resident memory, for benchmarks and the demo's timing/memory table.

import Foundation

public enum ProcessMemory {
    /// VmHWM of /proc/self/status in MiB (0 where /proc is not available).
    public static func peakRSSMegabytes() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Double(line.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0) / 1024
        }
        return 0
    }
}

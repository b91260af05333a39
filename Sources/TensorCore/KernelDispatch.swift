// Which vector code the C kernels (_CKernels) run: the best path the CPU has (AVX-512, AVX2+FMA+F16C or
// portable C), capped by the environment variable RLHF_CPU for the whole process, or by `withPath` for one
// thread's work (tests run every path the CPU supports; the thread pool's helpers inherit the cap).

import _CKernels

/// A kernel path; a CPU that runs one runs every lower one.
public enum KernelPath: Int32, CaseIterable, Comparable, CustomStringConvertible, Sendable {
    case portable = 0, avx2 = 1, avx512 = 2

    public static func < (a: KernelPath, b: KernelPath) -> Bool { a.rawValue < b.rawValue }
    /// "portable", "avx2" or "avx512" (the values RLHF_CPU takes).
    public var description: String { String(cString: rk_path_name(rawValue)) }
    /// The path a name denotes ("portable", "avx2", "avx512"), nil for anything else.
    public init?(name: String) {
        let p = rk_path_parse(name)
        guard p >= 0, let path = KernelPath(rawValue: p) else { return nil }
        self = path
    }
}

public enum KernelDispatch {
    /// The best path this CPU supports.
    public static var cpuPath: KernelPath { KernelPath(rawValue: rk_path_cpu()) ?? .portable }
    /// The process's path: `cpuPath` capped by RLHF_CPU.
    public static var defaultPath: KernelPath { KernelPath(rawValue: rk_path_default()) ?? .portable }
    /// The path the calling thread runs now.
    public static var path: KernelPath { KernelPath(rawValue: rk_path()) ?? .portable }
    /// Every path this process can run (portable … `defaultPath`), for tests that compare them.
    public static var availablePaths: [KernelPath] { KernelPath.allCases.filter { $0 <= defaultPath } }

    /// Runs `body` with the calling thread capped at `path` (clamped to what the CPU has), then restores
    /// the previous cap. Parallel loops started inside run every chunk on that path.
    public static func withPath<T>(_ path: KernelPath, _ body: () throws -> T) rethrows -> T {
        let previous = rk_thread_path_cap()
        rk_set_thread_path(path.rawValue)
        defer { rk_set_thread_path(previous) }
        return try body()
    }

    /// A message when RLHF_CPU holds a value that names no path (the kernels then ignore it), else nil.
    public static func environmentProblem(_ environment: [String: String]) -> String? {
        guard let value = environment["RLHF_CPU"], !value.isEmpty, value != "auto", KernelPath(name: value) == nil
        else {
            return nil
        }
        return "RLHF_CPU=\(value) names no kernel path: expected avx512, avx2, portable or auto "
            + "(this CPU supports up to \(cpuPath))"
    }

    /// One line for logs and benchmarks: the path in use, what the CPU has, and why they differ.
    public static var summary: String {
        let p = path, cpu = cpuPath, blas = MatMul.blasCoreNote.map { "; " + $0 } ?? ""
        if p == cpu { return "kernels: \(p)\(blas)" }
        return "kernels: \(p) (CPU supports \(cpu); capped by \(p == defaultPath ? "RLHF_CPU" : "this thread"))\(blas)"
    }
}

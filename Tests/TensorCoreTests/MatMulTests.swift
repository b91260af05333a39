// The few-row decoding kernel against sgemm (both C paths), incl. odd sizes and accumulation.

import Foundation
import Testing
import _CKernels
import _TestSupport

@testable import TensorCore

@Suite struct MatMulTests {
    /// sgemm runs OpenBLAS kernels as wide as the kernel path: an OpenBLAS older than the CPU model falls back to a
    /// generic SSE core (0.3.21 on Emerald Rapids: "Prescott", ~4x slower), and RLHF_CPU=avx2 on an AVX-512 CPU
    /// asks for AVX2 kernels; the first GEMM re-selects (`rk_blas_select_core`). Checked where the BLAS is a
    /// DYNAMIC_ARCH OpenBLAS and no core was forced with OPENBLAS_CORETYPE (then only the note is checked).
    @Test func openBLASKernelsAreAsWideAsThePath() throws {
        MatMul.configureThreads()
        let core = String(cString: rk_blas_core_name())
        try #require(rk_blas_is_dynamic() != 0, "needs a DYNAMIC_ARCH OpenBLAS")
        let width = KernelDispatch.defaultPath == .avx512 ? 512 : KernelDispatch.defaultPath == .avx2 ? 256 : 0
        if let forced = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] {
            // Left alone; the note labels figures when the forced core's width differs from the path's.
            let differs = width > 0 && Int(rk_blas_core_width(core)) != width
            #expect((MatMul.blasCoreNote?.contains("forced by OPENBLAS_CORETYPE=\(forced)") ?? false) == differs)
            return
        }
        guard width > 0 else { return }  // the portable path leaves OpenBLAS's choice alone
        #expect(
            Int(rk_blas_core_width(core)) == width, "OpenBLAS core \(core) on the \(KernelDispatch.defaultPath) path")
        // The variable the re-selection set is gone again: child processes choose for themselves.
        #expect(getenv("OPENBLAS_CORETYPE") == nil)
    }

    @Test func vectorCoresAreTheAVXFamilies() {
        #if arch(x86_64) && os(Linux)
            for (name, width) in [
                ("Haswell", 256), ("SkylakeX", 512), ("COOPERLAKE", 512), ("Zen", 256), ("SapphireRapids", 512),
            ] {
                #expect(rk_blas_core_width(name) == width, "\(name)")
            }
            for name in ["Prescott", "Nehalem", "Core2", "Barcelona", "Atom", ""] {
                #expect(rk_blas_core_width(name) == 0, "\(name)")
            }
        #endif
    }

    @Test(arguments: [
        (1, 5, 3), (1, 37, 600), (3, 17, 33), (16, 40, 576), (7, 9, 16), (16, 6, 15), (12, 29, 40), (13, 50, 7),
    ])
    func fewRowsMatchesSgemm(rows: Int, outF: Int, inF: Int) {
        var r = Rand(21)
        let x = r.buffer(rows * inF), w = r.buffer(outF * inF), y0 = r.buffer(rows * outF)
        let reference = FloatBuffer(count: rows * outF)
        for accumulate in [false, true] {
            reference.pointer.update(from: y0.pointer, count: rows * outF)
            MatMul.gemm(
                reference.pointer, x.pointer, w.pointer, transB: true, m: rows, n: outF, k: inF,
                beta: accumulate ? 1 : 0)
            for path in KernelDispatch.availablePaths {
                rk_set_thread_path(path.rawValue)
                let y = FloatBuffer(count: rows * outF)
                y.pointer.update(from: y0.pointer, count: rows * outF)
                Linear.forward(
                    out: y.pointer, input: x.pointer, weight: w.pointer, rows: rows, inFeatures: inF,
                    outFeatures: outF, accumulate: accumulate)
                rk_set_thread_path(-1)
                for i in 0..<(rows * outF) {
                    #expect(
                        abs(y.pointer[i] - reference.pointer[i]) <= 1e-4 * max(1, abs(reference.pointer[i])),
                        "element \(i) accumulate \(accumulate) path \(path)")
                }
            }
        }
    }
}

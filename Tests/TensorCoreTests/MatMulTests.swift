// The few-row decoding kernel against sgemm (both C paths), incl. odd sizes and accumulation.

import Testing
import _CKernels
import _TestSupport

@testable import TensorCore

@Suite struct MatMulTests {
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

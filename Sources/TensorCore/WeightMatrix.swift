// A linear layer's weight [O, I] in `nn.Linear` layout, dense Float32 or kept in a quantised GGUF form
// (QLoRA-style frozen base: dequantised on the fly). One type so layers, the vocabulary projection and
// losses take either without knowing which.

import _CKernels

public enum WeightMatrix: @unchecked Sendable {
    case dense(UnsafePointer<Float>)
    case quantized(QuantizedMatrix)

    /// The Float32 pointer of a dense weight.
    public var densePointer: UnsafePointer<Float>? {
        if case let .dense(p) = self { return p }
        return nil
    }

    /// y[N, O] (+)= x[N, I] · Wᵀ.
    public func forward(
        out y: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, rows n: Int,
        inFeatures: Int, outFeatures: Int, accumulate: Bool = false
    ) {
        switch self {
        case let .dense(w):
            Linear.forward(
                out: y, input: x, weight: w, rows: n, inFeatures: inFeatures, outFeatures: outFeatures,
                accumulate: accumulate)
        case let .quantized(q):
            precondition(
                q.rows == outFeatures && q.columns == inFeatures,
                "quantised weight [\(q.rows), \(q.columns)] vs [\(outFeatures), \(inFeatures)]")
            QuantizedLinear.forward(out: y, input: x, weight: q, rows: n, accumulate: accumulate)
        }
    }

    /// forward: y = x Wᵀ  ⇒  dx (=|+=) dy W, dW += dyᵀ x (dense weights with a gradient only).
    public func backward(
        dInput dx: UnsafeMutablePointer<Float>?, dWeight dw: UnsafeMutablePointer<Float>?,
        dOut dy: UnsafePointer<Float>,
        input x: UnsafePointer<Float>, rows n: Int, inFeatures: Int, outFeatures: Int, accumulateInput: Bool = false
    ) {
        switch self {
        case let .dense(w):
            Linear.backward(
                dInput: dx, dWeight: dw, dOut: dy, input: x, weight: w, rows: n, inFeatures: inFeatures,
                outFeatures: outFeatures, accumulateInput: accumulateInput)
        case let .quantized(q):
            precondition(dw == nil, "a quantised weight is frozen: it has no gradient")
            if let dx {
                QuantizedLinear.backwardInput(dInput: dx, dOut: dy, weight: q, rows: n, accumulate: accumulateInput)
            }
        }
    }

    /// Copies row r (I values) into `out` (embedding lookup).
    public func row(_ r: Int, into out: UnsafeMutablePointer<Float>, columns: Int) {
        switch self {
        case let .dense(w): out.update(from: w + r * columns, count: columns)
        case let .quantized(q): q.dequantizeRows(r..<(r + 1), into: out)
        }
    }
}

extension WeightMatrix {
    /// One product of `forwardGroup`: y[N, outFeatures] = x · Wᵀ.
    public struct GroupProduct {
        public let weight: WeightMatrix
        public let out: UnsafeMutablePointer<Float>
        public let outFeatures: Int
        /// y += x · Wᵀ instead of y =.
        public let accumulate: Bool
        public init(weight: WeightMatrix, out: UnsafeMutablePointer<Float>, outFeatures: Int, accumulate: Bool = false)
        {
            self.weight = weight
            self.out = out
            self.outFeatures = outFeatures
            self.accumulate = accumulate
        }
    }

    /// y_j = x[N, I] · W_jᵀ for weights that share one input (a layer's q, k, v; gate and up). At 12–16 rows
    /// (batched decoding), when every weight is dense fp32 or Q4_1/Q8_0, the input is packed once and the
    /// register tiles of all products run in one parallel pass: one wake-up and barrier instead of one per
    /// weight (at a decode step's ~20–100 µs per product, the per-product packing and barrier were ~5–10 % of
    /// it). Below 12 rows the dot-product tiles of all products (or, for one row on AVX2, the decode panels)
    /// likewise run in one pass of claimed chunks. `Linear.forward` and `QuantizedLinear.forward` run their
    /// products of up to 16 rows through here too (bf16 weights aside), so every decode-size product claims
    /// its tiles the same way. Otherwise (weights without a kernel here) the products run in turn.
    /// `prefetch`: memory to bring into cache while the panel products compute (see `PrefetchList`).
    public static func forwardGroup(
        _ products: [GroupProduct], input x: UnsafePointer<Float>, rows n: Int, inFeatures: Int,
        prefetch: PrefetchList? = nil
    ) {
        // Per product: register-tile rows and the kernel over tiles [t0, t1).
        var tiles: [(rows: Int, run: (UnsafePointer<Float>, Int, Int) -> Void)] = []
        var blockSteps = 0  // 32-column steps of the panel kernels, over which `prefetch` is spread
        let pf = prefetch?.list
        if n >= Linear.transposedFewRows && n <= Linear.fewRowsLimit {
            for p in products {
                let o = p.outFeatures, y = p.out, acc: Int32 = p.accumulate ? 1 : 0
                switch p.weight {
                case let .dense(w):
                    let nr = Int(RK_T16_NR)
                    tiles.append(
                        (
                            nr,
                            { xt, t0, t1 in
                                rk_gemm_few_rows_t16(y, o, xt, w, n, t0 * nr, min(o, t1 * nr), inFeatures, acc)
                            }
                        ))
                case let .quantized(q):
                    guard q.rows == o, q.columns == inFeatures, let panels = q.decodePanels else { break }
                    let type = q.type.rawValue, step0 = blockSteps
                    blockSteps += (o + 15) / 16 * (inFeatures / 32)
                    tiles.append(
                        (
                            16,
                            { xt, t0, t1 in
                                rk_qpanels_gemm_t16(y, o, xt, panels, type, o, n, t0, t1, inFeatures, acc, pf, step0)
                            }
                        ))
                }
            }
        }
        let transposed = n >= Linear.transposedFewRows
        if n > 0 && n < Linear.transposedFewRows {
            // Fewer rows: the dot-product kernels on tiles of 4 weight rows (the ones `Linear.forward` and
            // `QuantizedLinear.forward` run for these sizes), all products in one pass of claimed chunks.
            var blockSums: [Float]? = nil  // the input's 32-element block sums, for the single-row panel products
            for p in products {
                let o = p.outFeatures, y = p.out, acc: Int32 = p.accumulate ? 1 : 0
                switch p.weight {
                case let .dense(w):
                    tiles.append(
                        (
                            4,
                            { _, t0, t1 in
                                rk_gemm_few_rows_nt(y, o, x, inFeatures, w, n, t0 * 4, min(o, t1 * 4), inFeatures, acc)
                            }
                        ))
                case let .quantized(q):
                    // bf16: rounded inputs first
                    guard q.rows == o, q.columns == inFeatures, q.type != .bf16 else { break }
                    let type = q.type.rawValue, blocks = q.blocks, rb = q.rowBytes, map = q.rowMapPointer
                    if n == 1, let panels = q.singleRowPanels {
                        if blockSums == nil {  // once per input row, not per claimed chunk
                            blockSums = [Float](unsafeUninitializedCapacity: inFeatures / 32) { b, c in
                                rk_block_sums(b.baseAddress!, x, inFeatures)
                                c = inFeatures / 32
                            }
                        }
                        let sums = blockSums!
                        tiles.append(
                            (
                                16,
                                { _, t0, t1 in
                                    sums.withUnsafeBufferPointer {
                                        rk_qpanels_gemv(y, x, $0.baseAddress, panels, type, o, t0, t1, inFeatures, acc)
                                    }
                                }
                            ))
                        continue
                    }
                    tiles.append(
                        (
                            4,
                            { _, t0, t1 in
                                rk_qgemm_few_rows_nt(
                                    y, o, x, inFeatures, blocks, type, rb, map, n, t0 * 4, min(o, t1 * 4), inFeatures,
                                    acc)
                            }
                        ))
                }
            }
        }
        guard !products.isEmpty, tiles.count == products.count else {
            for p in products {
                p.weight.forward(
                    out: p.out, input: x, rows: n, inFeatures: inFeatures, outFeatures: p.outFeatures,
                    accumulate: p.accumulate)
            }
            return
        }
        prefetch?.spread(over: blockSteps)
        var starts = [0]  // first global tile of each product
        for (p, t) in zip(products, tiles) { starts.append(starts.last! + (p.outFeatures + t.rows - 1) / t.rows) }
        let runTiles = { (packed: UnsafePointer<Float>, t0: Int, t1: Int) in
            for j in tiles.indices {
                let lo = max(t0, starts[j]), hi = min(t1, starts[j + 1])
                if lo < hi { tiles[j].run(packed, lo - starts[j], hi - starts[j]) }
            }
        }
        if transposed {
            Linear.forEachTransposedTile(
                input: x, rows: n, inFeatures: inFeatures, tiles: starts.last!, claimed: true, runTiles)
        } else {
            let count = starts.last!
            parallelForClaimed(count, chunk: max(1, count / (12 * ThreadPool.shared.threadCount))) { r in
                runTiles(x, r.lowerBound, r.upperBound)
            }
        }
    }
}

// Frozen weights kept in their GGUF (ggml) block formats and used directly in products, so a base
// model's projections cost ~0.56 bytes per weight (Q4_1) or ~1.06 (Q8_0) instead of 4, and batch-1
// decoding, which only streams weights, reads ~5× fewer bytes. Decoding is bit-identical to ggml's
// reference dequantisers (see _CKernels/Quantized.c), so results differ from the fp32 path only in
// summation order.
//   < 12 rows: the C few-row kernel decodes each weight block in registers, split over our threads by
//   4-row tiles of output features.
//   12–16 rows (batched decoding): Q4_1/Q8_0 through their decode panels (a 16-row re-layout built on first
//   use, _CKernels/Panels.c): compute-bound, bit-identical to the fp32 transposed tile; other types decode
//   tiles of rows into L1 for that tile.
//   more rows: tiles of output rows are dequantised into a reused ≤ 4 MB scratch and multiplied by sgemm.

import Foundation
import _CKernels

/// Weight formats a `QuantizedMatrix` can hold, numbered as ggml's `enum ggml_type`.
public enum QuantizedType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    /// 32-weight blocks of 20 bytes: fp16 scale d, fp16 minimum m, 16 bytes of nibbles; w = q·d + m.
    case q4_1 = 3
    /// 32-weight blocks of 34 bytes: fp16 scale d, 32 int8; w = q·d.
    case q8_0 = 8
    case bf16 = 30

    /// Weights per block (the column count must be a multiple of it).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: 1
        case .q4_1, .q8_0: 32
        }
    }

    /// Bytes per block.
    public var blockByteCount: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q4_1: 20
        case .q8_0: 34
        }
    }

    /// Bytes of one packed row of `columns` weights.
    public func rowByteCount(columns: Int) -> Int {
        precondition(
            columns % blockSize == 0, "\(columns) columns is not a whole number of \(self) blocks of \(blockSize)")
        return columns / blockSize * blockByteCount
    }

    public var description: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .q4_1: "Q4_1"
        case .q8_0: "Q8_0"
        case .bf16: "BF16"
        }
    }
}

/// A [rows, columns] weight matrix in a ggml block format (the `nn.Linear` layout [out, in]), read in
/// place from borrowed memory (typically a memory-mapped GGUF file, kept alive through `owner`).
/// Row r's bytes start at `blocks + physicalRow(r) · rowBytes`, where `physicalRow(r)` is `rowMap[r]`
/// when a row map is set (llama.cpp permutes the rows of q/k projections) and r otherwise.
public struct QuantizedMatrix: @unchecked Sendable {
    public let type: QuantizedType
    public let rows: Int
    public let columns: Int
    /// Start of the first physical row.
    public let blocks: UnsafeRawPointer
    /// Bytes from one physical row to the next (at least the packed row size).
    public let rowBytes: Int
    /// Keeps the memory behind `blocks` alive (a GGUF file object, or the owned copy).
    public let owner: AnyObject?
    private let rowMapStorage: RowMapStorage?
    private let panelCache: LazyStorage?
    private let transposeCache: LazyStorage?

    /// A view of `rows` physical rows at `blocks`. `rowMap` (logical row → physical row, each entry in
    /// 0..<physicalRows, default `rows`) is copied.
    /// - Precondition: `columns` is a multiple of `type.blockSize` (32 for Q4_1 and Q8_0).
    public init(
        type: QuantizedType, rows: Int, columns: Int, blocks: UnsafeRawPointer, rowBytes: Int? = nil,
        owner: AnyObject?, rowMap: [Int32]? = nil, physicalRows: Int? = nil
    ) {
        self.init(
            type: type, rows: rows, columns: columns, blocks: blocks, rowBytes: rowBytes, owner: owner, rowMap: rowMap,
            physicalRows: physicalRows, transposable: true)
    }

    /// `transposable`: whether a bf16 matrix may build `transposedBF16` (not the transposed copy itself).
    private init(
        type: QuantizedType, rows: Int, columns: Int, blocks: UnsafeRawPointer, rowBytes: Int? = nil,
        owner: AnyObject?, rowMap: [Int32]? = nil, physicalRows: Int? = nil, transposable: Bool
    ) {
        precondition(rows >= 0 && columns >= 0, "negative shape [\(rows), \(columns)]")
        let packed = type.rowByteCount(columns: columns)
        self.type = type
        self.rows = rows
        self.columns = columns
        self.blocks = blocks
        self.rowBytes = rowBytes ?? packed
        precondition(self.rowBytes >= packed, "row stride \(self.rowBytes) < packed row \(packed) bytes")
        self.owner = owner
        if let rowMap {
            precondition(rowMap.count == rows, "row map has \(rowMap.count) entries for \(rows) rows")
            let limit = physicalRows ?? rows
            for (i, p) in rowMap.enumerated() {
                precondition(p >= 0 && Int(p) < limit, "row map entry \(i) = \(p) outside 0..<\(limit)")
            }
            rowMapStorage = RowMapStorage(rowMap)
        } else {
            rowMapStorage = nil
        }
        let panelBytes = rk_qpanels_size(type.rawValue, rows, columns)
        panelCache = panelBytes > 0 ? LazyStorage(byteCount: panelBytes) : nil
        transposeCache = type == .bf16 && transposable ? LazyStorage(byteCount: rows * columns * 2) : nil
    }

    /// An owned copy of packed rows (`bytes.count == rows · type.rowByteCount(columns:)`).
    public init(type: QuantizedType, rows: Int, columns: Int, bytes: [UInt8], rowMap: [Int32]? = nil) {
        let packed = type.rowByteCount(columns: columns)
        precondition(bytes.count == rows * packed, "\(bytes.count) bytes for \(rows) rows of \(packed)")
        let storage = ByteStorage(bytes)
        self.init(
            type: type, rows: rows, columns: columns, blocks: UnsafeRawPointer(storage.pointer),
            rowBytes: packed, owner: storage, rowMap: rowMap)
    }

    /// An owned BF16 copy of the Float32 matrix `values` [rows, columns], rounded to nearest even (denormals
    /// to ±0, as `vcvtneps2bf16`; see _CKernels/BF16.c).
    public init(bf16From values: UnsafePointer<Float>, rows: Int, columns: Int) {
        let storage = ByteStorage(byteCount: rows * columns * 2)
        let dst = storage.pointer.assumingMemoryBound(to: UInt16.self)
        parallelFor(rows, grain: max(1, 65536 / max(columns, 1))) { r in
            rk_f32_to_bf16(dst + r.lowerBound &* columns, values + r.lowerBound &* columns, r.count &* columns)
        }
        self.init(
            type: .bf16, rows: rows, columns: columns, blocks: UnsafeRawPointer(storage.pointer),
            rowBytes: columns * 2, owner: storage)
    }

    /// The decode-panel copy of a Q4_1 / Q8_0 matrix (_CKernels/Panels.c), built on first use by a 12–16-row
    /// product (batched decoding), on the AVX2 and AVX-512 paths by a single-row one, and on the AVX-512 path by a
    /// 17–`QuantizedLinear.panelRowsLimit`-row one (short prefills), and shared by copies of this value:
    /// 16 rows' scales side by side and each column's 16 quants together, so the product decodes a column of
    /// 16 rows with one widen-convert-FMA and spends its time in FMAs instead of streaming fp32 weights —
    /// bit-identical to the dense fp32 path. It costs the matrix's size again (~5 bits per Q4_1 weight), only
    /// once batched decoding (or, on AVX2, any decoding) is used.
    var decodePanels: UnsafeRawPointer? {
        guard let panelCache else { return nil }
        return panelCache.pointer { storage in
            let map = rowMapPointer, type = type.rawValue, rows = rows, columns = columns, blocks = blocks,
                rb = rowBytes
            parallelFor((rows + 15) / 16, grain: max(1, 16384 / max(columns, 1))) { p in
                rk_qpanels_pack(storage, blocks, type, rb, map, rows, columns, p.lowerBound, p.upperBound)
            }
        }
    }

    /// Wᵀ [columns, rows] of a bf16 matrix: the same values transposed, built on first use by a backward product on
    /// the AVX512_BF16 path (training on a `--bf16` base), so dX = dY·W runs on the bf16 tiles at the forward's rate
    /// instead of dequantised fp32 sgemm. It costs the matrix's size again, counted in `byteCount` once built.
    var transposedBF16: QuantizedMatrix? {
        guard type == .bf16, let transposeCache else { return nil }
        let map = rowMapPointer, rows = rows, columns = columns, blocks = blocks, rb = rowBytes
        let pointer = transposeCache.pointer { storage in
            let dst = storage.assumingMemoryBound(to: UInt16.self)
            // Blocks of 64 columns (output rows of Wᵀ), each read down every logical row of W.
            parallelFor((columns + 63) / 64) { range in
                for block in range {
                    let c0 = block * 64, c1 = min(columns, c0 + 64)
                    for r in 0..<rows {
                        let src = (blocks + Int(map?[r] ?? Int32(r)) &* rb).assumingMemoryBound(to: UInt16.self)
                        for c in c0..<c1 { dst[c &* rows &+ r] = src[c] }
                    }
                }
            }
        }
        return QuantizedMatrix(
            type: .bf16, rows: columns, columns: rows, blocks: pointer, owner: transposeCache, transposable: false)
    }

    /// Whether `transposedBF16` has been built.
    public var hasTransposedBF16: Bool { transposeCache?.isBuilt ?? false }

    /// The decode panels when a single-row product should read them instead of the blocks: on the AVX2 and
    /// AVX-512 paths, where the panels' factorised product (`rk_qpanels_gemv`) takes 1.3–1.6× less time than the
    /// row-major blocks (whose per-row fp16 scales are converted and broadcast per weight), so batch-1 decoding
    /// builds the panels too: the weights' bytes again, as batch-16 decoding already does. nil on the portable
    /// path and for other types.
    var singleRowPanels: UnsafeRawPointer? { KernelDispatch.path != .portable ? decodePanels : nil }

    /// The decode panels when a 17–`QuantizedLinear.panelRowsLimit`-row product should run their 16-row kernel
    /// over row blocks instead of dequantising for sgemm: on the AVX-512 path only (on AVX2 that kernel, two ymm
    /// per column, runs at half sgemm's rate). nil elsewhere and for other types.
    var rowBlockPanels: UnsafeRawPointer? { KernelDispatch.path == .avx512 ? decodePanels : nil }

    /// Whether the decode panels have been built (they then count in `byteCount`).
    public var hasDecodePanels: Bool { panelCache?.isBuilt ?? false }

    /// The logical → physical row map, if any.
    public var rowMap: [Int32]? { rowMapStorage.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) } }

    var rowMapPointer: UnsafePointer<Int32>? { rowMapStorage.map { UnsafePointer($0.pointer) } }

    /// Bytes held for the weights (physical rows × row stride) plus the row map and decode panels.
    public var byteCount: Int {
        rows * rowBytes + (rowMapStorage?.count ?? 0) * 4 + (hasDecodePanels ? panelCache!.byteCount : 0)
            + (hasTransposedBF16 ? transposeCache!.byteCount : 0)
    }

    /// Writes all rows as Float32 to `out` ([rows, columns]).
    public func dequantize(into out: UnsafeMutablePointer<Float>) {
        dequantizeRows(0..<rows, into: out)
    }

    /// Writes logical rows `range` as Float32 to `out` ([range.count, columns]), split over our threads.
    public func dequantizeRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "rows \(range) of \(rows)")
        if range.isEmpty || columns == 0 { return }
        let cols = columns, lo = range.lowerBound
        // ~0.5 µs per grain: one core decodes a 576-wide Q4_1 row in ~30 ns (measured, L2-resident).
        parallelFor(range.count, grain: max(1, 8192 / cols)) { r in
            rk_dequant_rows(
                out + r.lowerBound &* cols, blocks, type.rawValue, rowBytes, rowMapPointer,
                lo &+ r.lowerBound, r.count, cols)
        }
    }

    /// `dequantizeRows` on the calling thread only. The many-row products use it: decoding a tile costs
    /// ~1 % of its sgemm (a 1536 × 576 Q4_1 tile: 46 µs against ~4.5 ms for 512 rows), less than waking
    /// a parked helper (25–50 µs), and in `MatMul.Mode.blasThreads` a woken helper would spin next to
    /// OpenBLAS's threads during the following sgemm.
    func dequantizeRowsOnThisThread(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        rk_dequant_rows(out, blocks, type.rawValue, rowBytes, rowMapPointer, range.lowerBound, range.count, columns)
    }

    /// The row map that undoes llama.cpp's q/k permutation (for its interleaved RoPE): logical
    /// (Hugging Face, rotate-half) row h·D + j·D/2 + i is GGUF row h·D + 2i + j.
    public static func llamaRoPERowMap(heads: Int, headDim d: Int) -> [Int32] {
        precondition(d % 2 == 0, "head dimension \(d) is odd")
        var map = [Int32](repeating: 0, count: heads * d)
        for h in 0..<heads {
            for i in 0..<(d / 2) {
                for j in 0..<2 { map[h * d + j * d / 2 + i] = Int32(h * d + 2 * i + j) }
            }
        }
        return map
    }
}

private final class RowMapStorage: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>
    let count: Int
    init(_ values: [Int32]) {
        count = values.count
        pointer = .allocate(capacity: max(count, 1))
        values.withUnsafeBufferPointer { pointer.initialize(from: $0.baseAddress!, count: count) }
    }
    deinit { pointer.deallocate() }
}

/// Derived storage (the decode panels) built once, on first use, under a lock (products may run from several
/// threads).
private final class LazyStorage: @unchecked Sendable {
    let byteCount: Int
    private var storage: ByteStorage?
    private let lock = NSLock()
    init(byteCount: Int) { self.byteCount = byteCount }

    var isBuilt: Bool { lock.lock(); defer { lock.unlock() }; return storage != nil }

    func pointer(build: (UnsafeMutableRawPointer) -> Void) -> UnsafeRawPointer {
        lock.lock()
        defer { lock.unlock() }
        if let storage { return UnsafeRawPointer(storage.pointer) }
        let s = ByteStorage(byteCount: byteCount)
        build(s.pointer)
        storage = s
        return UnsafeRawPointer(s.pointer)
    }
}

private final class ByteStorage: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    init(byteCount: Int) {
        // Whole 2 MB pages, offered to the kernel as transparent huge pages: the products stream these bytes
        // (decode panels, owned block copies) once per decode step, and with 4 KB pages every 4 KB of the
        // stream is a TLB miss. Measured on the AVX2 machine: batch-1 decode step 8.1 → 7.0 ms; building the
        // panels stays ~0.1 s (the fault-in cost that keeps huge pages off the load-time weights, FloatBuffer).
        let huge = 2 << 20
        if byteCount >= huge {
            pointer = .allocate(byteCount: (byteCount + huge - 1) / huge * huge, alignment: huge)
            #if os(Linux)
                _ = madvise(pointer, (byteCount + huge - 1) / huge * huge, MADV_HUGEPAGE)
            #endif
        } else {
            pointer = .allocate(byteCount: max(byteCount, 1), alignment: 64)
        }
    }
    convenience init(_ bytes: [UInt8]) {
        self.init(byteCount: bytes.count)
        bytes.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }
    deinit { pointer.deallocate() }
}

/// `nn.Linear` products (y = x Wᵀ, W [O, I]) with a `QuantizedMatrix` weight: I = weight.columns,
/// O = weight.rows, N = rows.
public enum QuantizedLinear {
    /// Floats in one dequantisation tile of the many-row path (4 MB): rows per tile = this / I.
    public static let tileFloats = 1 << 20
    /// Up to this many rows (above 16, on the AVX-512 path) Q4_1 / Q8_0 products run the decode panels' 16-row
    /// kernel over blocks of 16 rows instead of dequantising each matrix (on one thread) for sgemm. SmolLM2's
    /// projections over a whole prefill, timed in the model (Zen 5, OpenBLAS on its own AVX-512 core): 32 rows
    /// 31.4–33.7 → 16.7–21.4 ms, 48 rows 35.4–36.6 → 24.7–25.2, 64 rows 42.1–44.8 → 32.7–34.0
    /// (`QuantizedMatrix.rowBlockPanels` says on which paths).
    public static let panelRowsLimit = 64

    /// y[N, O] = x[N, I] · Wᵀ (+ y when accumulate). `tileFloats`: the many-row path's dequantisation tile.
    public static func forward(
        out y: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, weight w: QuantizedMatrix,
        rows n: Int, accumulate: Bool = false, tileFloats: Int = tileFloats
    ) {
        let i = w.columns, o = w.rows
        if n == 0 || o == 0 { return }
        if i == 0 {
            if !accumulate { y.update(repeating: 0, count: n * o) }
            return
        }
        var x = x
        if w.type == .bf16 {
            // bf16 products (_CKernels/BF16.c): inputs rounded to bf16 first, as llama.cpp's and torch's bf16
            // matmuls do. Without AVX512_BF16 the rounded inputs take the generic paths below, and more than
            // 16 rows the transposed tile in blocks of 16 rows (as with AVX512_BF16): each row's outputs are then
            // computed exactly as when it is decoded in a batch of 12–16, whatever the batch. A different fp32
            // summation order (sgemm) would flip some of the next layer's bf16 input roundings and move the logits
            // by about twice bf16's own noise (measured on AVX2: mean 0.046, max 0.54 vs 0.027 / 0.23).
            if rk_uses_avx512bf16() != 0 {
                bf16Forward(out: y, input: x, weight: w, rows: n, accumulate: accumulate)
                return
            }
            x = bf16Rounded(x, rows: n, columns: i)
            if n > Linear.fewRowsLimit {
                let map = w.rowMapPointer, acc: Int32 = accumulate ? 1 : 0
                forEachRowBlock(out: y, input: x, rows: n, inFeatures: i, outFeatures: o, bf16Pairs: false) {
                    yb, packed, m, o0, o1 in
                    rk_qgemm_few_rows_t16(yb, o, packed, w.blocks, w.type.rawValue, w.rowBytes, map, m, o0, o1, i, acc)
                }
                return
            }
        }
        if n >= Linear.transposedFewRows && n <= Linear.fewRowsLimit && w.decodePanels != nil {
            WeightMatrix.forwardGroup(
                [.init(weight: .quantized(w), out: y, outFeatures: o, accumulate: accumulate)],
                input: x, rows: n, inFeatures: i)
            return
        }
        if n >= Linear.transposedFewRows && n <= Linear.fewRowsLimit {
            let map = w.rowMapPointer
            let nr = Int(RK_T16_NR)
            Linear.forEachTransposedTile(input: x, rows: n, inFeatures: i, tiles: (o + nr - 1) / nr) { packed, t0, t1 in
                rk_qgemm_few_rows_t16(
                    y, o, packed, w.blocks, w.type.rawValue, w.rowBytes, map, n, t0 * nr, min(o, t1 * nr), i,
                    accumulate ? 1 : 0)
            }
            return
        }
        if n < Linear.transposedFewRows && w.type != .bf16 {
            WeightMatrix.forwardGroup(
                [.init(weight: .quantized(w), out: y, outFeatures: o, accumulate: accumulate)],
                input: x, rows: n, inFeatures: i)
            return
        }
        if n <= Linear.fewRowsLimit {
            // bf16 weights (inputs rounded above; `forwardGroup` takes unrounded inputs, so it leaves bf16 out).
            // One unit = a tile of 4 weight rows. Its cost ≈ 4 rows · I/32 blocks · (~5 cycles of decoding
            // + 2 FMAs per input row) at ~3 GHz (measured on Zen 4); the grain is ~0.5 µs of that.
            let tiles = (o + 3) / 4
            let tileNs = Double(4 * i / 32) * Double(5 + 2 * n) / 3.0
            let grain = max(1, Int(500 / max(tileNs, 1)))
            let map = w.rowMapPointer
            parallelFor(tiles, grain: grain) { r in
                rk_qgemm_few_rows_nt(
                    y, o, x, i, w.blocks, w.type.rawValue, w.rowBytes, map, n,
                    r.lowerBound * 4, min(o, r.upperBound * 4), i, accumulate ? 1 : 0)
            }
            return
        }
        if n <= panelRowsLimit, let panels = w.rowBlockPanels {
            // Short prefills and batch 17–64 decoding: the panels' 16-row kernel on each block of 16 rows, a chunk
            // of weight rows kept in L2 for all blocks. Each row's outputs are those it gets in a 12–16-row batch
            // (the kernel sums every row in its own lane, over k in order), whatever the batch.
            let acc: Int32 = accumulate ? 1 : 0, type = w.type.rawValue
            forEachRowBlock(out: y, input: x, rows: n, inFeatures: i, outFeatures: o, bf16Pairs: false) {
                yb, packed, m, o0, o1 in  // o0 is a multiple of 16 (chunks of 4 × RK_T16_NR = 48 rows)
                rk_qpanels_gemm_t16(yb, o, packed, panels, type, o, m, o0 / 16, (o1 + 15) / 16, i, acc, nil, 0)
            }
            return
        }
        forEachTile(of: w, tileFloats: tileFloats) { o0, count, tile in
            MatMul.gemm(
                y + o0, ldc: o, x, lda: i, tile, ldb: i, transB: true,
                m: n, n: count, k: i, beta: accumulate ? 1 : 0)
        }
    }

    /// y = bf16(x) · Wᵀ on the AVX512_BF16 kernels: fewer than 12 rows through dot-product tiles of 4 weight
    /// rows; 12–16 through the transposed tile; more in blocks of 16 rows (`forEachRowBlock`), where the
    /// tile runs at ~2× sgemm's fp32 rate.
    private static func bf16Forward(
        out y: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, weight w: QuantizedMatrix,
        rows n: Int, accumulate: Bool
    ) {
        let i = w.columns, o = w.rows, map = w.rowMapPointer, acc: Int32 = accumulate ? 1 : 0
        if n < Linear.transposedFewRows {
            let ld = (i + 31) / 32 * 32  // bf16 rows padded with zeros to whole 64-byte lines
            let xb = UnsafeMutableRawPointer(Scratch.buffer("quantized.bf16-rows", count: (n * ld + 1) / 2).pointer)
                .assumingMemoryBound(to: UInt16.self)
            for r in 0..<n {
                rk_f32_to_bf16(xb + r * ld, x + r * i, i)
                (xb + r * ld + i).update(repeating: 0, count: ld - i)
            }
            // One unit = 4 weight rows; ~(1 + n) cycles per 32 weights per row at ~3 GHz; grain ≈ 0.5 µs.
            let tiles = (o + 3) / 4, tileNs = Double(4 * ld / 32) * Double(1 + n) / 3.0
            parallelFor(tiles, grain: max(1, Int(500 / max(tileNs, 1)))) { r in
                rk_bf16_gemm_few_rows_nt(
                    y, o, xb, ld, w.blocks, w.rowBytes, map, n, r.lowerBound * 4,
                    min(o, r.upperBound * 4), i, acc)
            }
            return
        }
        if n <= Linear.fewRowsLimit {
            let nr = Int(RK_T16_NR)
            Linear.forEachTransposedTile(input: x, rows: n, inFeatures: i, tiles: (o + nr - 1) / nr, bf16Pairs: true) {
                packed, t0, t1 in
                rk_bf16_gemm_few_rows_t16(y, o, packed, w.blocks, w.rowBytes, map, n, t0 * nr, min(o, t1 * nr), i, acc)
            }
            return
        }
        forEachRowBlock(out: y, input: x, rows: n, inFeatures: i, outFeatures: o, bf16Pairs: true) {
            yb, packed, m, o0, o1 in
            rk_bf16_gemm_few_rows_t16(yb, o, packed, w.blocks, w.rowBytes, map, m, o0, o1, i, acc)
        }
    }

    /// The many-row form of the transposed tile: x [N, I] packed in blocks of 16 rows (as bf16 pairs when
    /// `bf16Pairs`), then chunks of 4 register tiles of weight rows (≤ 150 KB, kept in L2) each run against
    /// every block, so the weights stream from memory once. `body(y block, packed block, rows ≤ 16, o0, o1)`
    /// computes output columns [o0, o1) of one block.
    private static func forEachRowBlock(
        out y: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, rows n: Int,
        inFeatures i: Int, outFeatures o: Int, bf16Pairs: Bool,
        _ body: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int, Int, Int) -> Void
    ) {
        let blocks = (n + 15) / 16, stride = i * 16
        let packed = Scratch.buffer("quantized.row-blocks", count: blocks * stride).pointer
        parallelFor(blocks) { r in
            for b in r {
                rk_pack_rows_t16(packed + b &* stride, x + b &* 16 &* i, i, min(16, n - b * 16), i)
                if bf16Pairs { rk_bf16_pairs_t16(packed + b &* stride, i) }
            }
        }
        let chunk = 4 * Int(RK_T16_NR)
        parallelFor((o + chunk - 1) / chunk) { r in
            for c in r {
                for b in 0..<blocks {
                    body(
                        y + b &* 16 &* o, packed + b &* stride, min(16, n - b * 16), c * chunk, min(o, (c + 1) * chunk))
                }
            }
        }
    }

    /// forward: y = x Wᵀ  ⇒  dx[N, I] (=|+=) dy[N, O] · W, computed as Σ over tiles of output rows
    /// dy[:, o0..<o1] · W[o0..<o1, :] (each tile dequantised once into the scratch).
    public static func backwardInput(
        dInput dx: UnsafeMutablePointer<Float>, dOut dy: UnsafePointer<Float>, weight w: QuantizedMatrix,
        rows n: Int, accumulate: Bool = false, tileFloats: Int = tileFloats
    ) {
        let i = w.columns, o = w.rows
        if n == 0 || i == 0 { return }
        if o == 0 {
            if !accumulate { dx.update(repeating: 0, count: n * i) }
            return
        }
        var dy = dy
        if w.type == .bf16 {
            // As the forward: the inputs (here dY) rounded to bf16 first, on every path; with AVX512_BF16 the
            // product runs on the bf16 tiles against the transposed copy, dX = bf16(dY) · (Wᵀ)ᵀ.
            if rk_uses_avx512bf16() != 0, let t = w.transposedBF16 {
                bf16Forward(out: dx, input: dy, weight: t, rows: n, accumulate: accumulate)
                return
            }
            dy = bf16Rounded(dy, rows: n, columns: o)
        }
        forEachTile(of: w, tileFloats: tileFloats) { o0, count, tile in
            MatMul.gemm(
                dx, ldc: i, dy + o0, lda: o, tile, ldb: i,
                m: n, n: i, k: count, beta: (o0 == 0 && !accumulate) ? 0 : 1)
        }
    }

    /// `x` [rows, columns] rounded to bf16 (nearest even), in the calling thread's scratch: the inputs of a product
    /// with bf16 weights on the paths without AVX512_BF16.
    private static func bf16Rounded(_ x: UnsafePointer<Float>, rows n: Int, columns c: Int) -> UnsafePointer<Float> {
        let rounded = Scratch.buffer("quantized.bf16-input", count: n * c).pointer
        parallelFor(n, grain: max(1, 65536 / c)) { r in
            rk_bf16_round(rounded + r.lowerBound &* c, x + r.lowerBound &* c, r.count &* c)
        }
        return UnsafePointer(rounded)
    }

    /// Dequantises W in tiles of whole rows (≤ `tileFloats` floats, in the calling thread's scratch)
    /// and hands each to `body(firstRow, rowCount, tile)`.
    private static func forEachTile(
        of w: QuantizedMatrix, tileFloats: Int,
        _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void
    ) {
        let i = w.columns, o = w.rows
        let tileRows = max(1, min(o, tileFloats / i))
        let tile = Scratch.buffer("quantized.tile", count: tileRows * i).pointer
        var o0 = 0
        while o0 < o {
            let count = min(tileRows, o - o0)
            w.dequantizeRowsOnThisThread(o0..<(o0 + count), into: tile)
            body(o0, count, tile)
            o0 += count
        }
    }
}

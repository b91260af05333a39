// Key/value cache for batched decoding: per layer, K and V of every row at every filled position,
// laid out [B, Hkv, capacity, D] so each head's keys are one contiguous stretch (decode attention streams
// them from memory every step: 22–23 GB/s measured, against 15–17 for the strided rows of [B, capacity, Hkv·D]),
// plus an additive key mask [B, capacity] (−∞ at left-padding positions). All rows share one length
// (ragged prompts are left-padded). All layers live in one allocation on 2 MB pages.

import TensorCore

public final class KVCache: @unchecked Sendable {
    public let batchSize: Int
    public let capacity: Int
    public private(set) var length = 0
    let heads: Int, headDim: Int
    private let storage: FloatBuffer
    /// Layer l's keys and values, [B, Hkv, capacity, D].
    let k: [UnsafeMutablePointer<Float>]
    let v: [UnsafeMutablePointer<Float>]
    let keyMask: FloatBuffer
    var hasMask = false
    /// A layer's filled keys and values, for the products before its attention to prefetch.
    let prefetch: PrefetchList
    /// The adapter every forward through this cache runs with (nil = the bare base): keys and values
    /// computed through one adapter are meaningless under another.
    public let adapter: LoRAAdapter?

    public init(config c: LlamaConfig, batchSize: Int, capacity: Int, adapter: LoRAAdapter? = nil) {
        self.adapter = adapter
        self.batchSize = batchSize
        self.capacity = capacity
        heads = c.kvHeadCount
        headDim = c.headDim
        let per = batchSize * capacity * c.kvDim
        storage = FloatBuffer(count: 2 * c.layerCount * per, hugePages: true)
        k = (0..<c.layerCount).map { [storage] in storage.pointer + 2 * $0 * per }
        v = (0..<c.layerCount).map { [storage] in storage.pointer + (2 * $0 + 1) * per }
        keyMask = FloatBuffer(count: batchSize * capacity)
        prefetch = PrefetchList(capacity: 2 * batchSize * heads)
    }

    /// Lists layer l's keys and values at positions 0 ..< rows, in the order decode attention reads them.
    func planPrefetch(layer l: Int, rows: Int) {
        let bytes = rows * headDim * 4, keys = k[l], values = v[l], stride = capacity * headDim
        prefetch.set(count: 2 * batchSize * heads) { i in
            (UnsafeRawPointer((i % 2 == 0 ? keys : values) + (i / 2) * stride), bytes)
        }
    }

    /// Attention strides over this layout.
    func shape(queryLength: Int, keyLength: Int, queryHeads: Int) -> AttentionShape {
        AttentionShape(
            batch: batchSize, queryLength: queryLength, keyLength: keyLength, queryHeads: queryHeads,
            kvHeads: heads, headDim: headDim, kvBatchStride: heads * capacity * headDim,
            maskBatchStride: capacity, kvRowStride: headDim, kvHeadStride: capacity * headDim)
    }

    /// Writes the new rows' keys and values (kNew, vNew: [B, tq, Hkv·D]) at positions length ..< length + tq.
    func store(layer l: Int, keys kNew: UnsafePointer<Float>, values vNew: UnsafePointer<Float>, tokens tq: Int) {
        let d = headDim, kvDim = heads * d
        for b in 0..<batchSize {
            for h in 0..<heads {
                let dst = ((b * heads + h) * capacity + length) * d
                for t in 0..<tq {
                    let src = (b * tq + t) * kvDim + h * d
                    (k[l] + dst + t * d).update(from: kNew + src, count: d)
                    (v[l] + dst + t * d).update(from: vNew + src, count: d)
                }
            }
        }
    }

    /// Marks key positions [length, length + mask row width) with the batch's additive mask.
    func appendMask(_ mask: [Float]?, tokens: Int) {
        guard let mask else { return }
        hasMask = true
        for b in 0..<batchSize {
            for t in 0..<tokens { keyMask.pointer[b * capacity + length + t] = mask[b * tokens + t] }
        }
    }

    func advance(by n: Int) { length += n }

    /// Fills this (empty) cache with rows of `source`: row b becomes a copy of source row `rows[b]` (a prompt
    /// prefilled once for the several rows that sample from it).
    func fill(from source: KVCache, rows: [Int]) {
        precondition(length == 0 && rows.count == batchSize && source.length <= capacity, "fill an empty cache")
        let d = headDim, n = source.length
        for l in k.indices {
            for (b, from) in rows.enumerated() {
                for h in 0..<heads {
                    let dst = (b * heads + h) * capacity * d, src = (from * heads + h) * source.capacity * d
                    (k[l] + dst).update(from: source.k[l] + src, count: n * d)
                    (v[l] + dst).update(from: source.v[l] + src, count: n * d)
                }
            }
        }
        hasMask = source.hasMask
        for (b, from) in rows.enumerated() {
            (keyMask.pointer + b * capacity).update(from: source.keyMask.pointer + from * source.capacity, count: n)
        }
        length = n
    }

    /// Drops everything (keeps the memory).
    public func reset() {
        length = 0
        hasMask = false
        keyMask.zero()
    }
}

extension LlamaModel {
    /// Runs `batch` (the next tokens of every row) through the decoder and `cache.adapter`, using and
    /// extending `cache`. Returns the final-norm hidden state of the last position of each row, [B, C].
    public func forwardCached(_ batch: TokenBatch, cache: KVCache) -> FloatBuffer {
        checkAdapter(cache.adapter)
        let adapter = cache.adapter
        precondition(batch.prefixes == nil, "cached decoding takes plain rows")
        precondition(batch.batchSize == cache.batchSize, "batch \(batch.batchSize) vs cache \(cache.batchSize)")
        precondition(
            cache.length + batch.length <= cache.capacity,
            "KV cache full: \(cache.length) + \(batch.length) > \(cache.capacity)")
        let c = config, n = batch.tokenCount, C = c.hiddenSize, F = c.intermediateSize, tq = batch.length
        let start = cache.length, tk = start + tq
        cache.appendMask(batch.keyMask, tokens: tq)
        let shape = cache.shape(queryLength: tq, keyLength: tk, queryHeads: c.headCount)
        let x = FloatBuffer(count: n * C), normed = FloatBuffer(count: n * C)
        let q = FloatBuffer(count: n * c.qDim), kNew = FloatBuffer(count: n * c.kvDim),
            vNew = FloatBuffer(count: n * c.kvDim)
        let attn = FloatBuffer(count: n * c.qDim), gate = FloatBuffer(count: n * F), up = FloatBuffer(count: n * F)
        let lse = FloatBuffer(count: batch.batchSize * c.headCount * tq)
        embed(batch.tokens, into: x.pointer)
        let mask = cache.hasMask ? UnsafePointer(cache.keyMask.pointer) : nil
        for l in 0..<c.layerCount {
            let w = layerWeights[l]
            RMSNorm.forward(
                out: normed.pointer, rstd: nil, input: x.pointer, weight: w.norm1.value, rows: n, channels: C,
                epsilon: c.rmsNormEpsilon)
            project(
                [.q, .k, .v], layer: l, outs: [q.pointer, kNew.pointer, vNew.pointer], input: normed.pointer, rows: n,
                adapter: adapter)
            batch.positions.withUnsafeBufferPointer { pos in
                rope.apply(q.pointer, positions: pos.baseAddress!, tokens: n, heads: c.headCount)
                rope.apply(kNew.pointer, positions: pos.baseAddress!, tokens: n, heads: c.kvHeadCount)
            }
            cache.store(layer: l, keys: kNew.pointer, values: vNew.pointer, tokens: tq)
            if tq <= 4 {
                Attention.forwardDecode(
                    out: attn.pointer, q: q.pointer, k: cache.k[l], v: cache.v[l], keyMask: mask, shape: shape)
            } else {
                Attention.forward(
                    out: attn.pointer, lse: lse.pointer, q: q.pointer, k: cache.k[l], v: cache.v[l],
                    keyMask: mask, shape: shape)
            }
            project(.o, layer: l, out: x.pointer, input: attn.pointer, rows: n, accumulate: true, adapter: adapter)
            RMSNorm.forward(
                out: normed.pointer, rstd: nil, input: x.pointer, weight: w.norm2.value, rows: n, channels: C,
                epsilon: c.rmsNormEpsilon)
            // Batched decode steps: the next layer's cache is streamed in while gate and up compute (their
            // panel products, at 12–16 rows, are what reads the list).
            let next = tq == 1 && l + 1 < c.layerCount && n >= Linear.transposedFewRows && n <= Linear.fewRowsLimit
            if next { cache.planPrefetch(layer: l + 1, rows: tk) }
            project(
                [.gate, .up], layer: l, outs: [gate.pointer, up.pointer], input: normed.pointer, rows: n,
                adapter: adapter, prefetch: next ? cache.prefetch : nil)
            SwiGLU.forward(out: gate.pointer, gate: gate.pointer, up: up.pointer, count: n * F)
            project(.down, layer: l, out: x.pointer, input: gate.pointer, rows: n, accumulate: true, adapter: adapter)
        }
        cache.advance(by: tq)
        let last = FloatBuffer(count: batch.batchSize * C)
        for b in 0..<batch.batchSize {
            (last.pointer + b * C).update(from: x.pointer + (b * tq + tq - 1) * C, count: C)
        }
        RMSNorm.forward(
            out: last.pointer, rstd: nil, input: last.pointer, weight: weights.value("model.norm.weight"),
            rows: batch.batchSize, channels: C, epsilon: c.rmsNormEpsilon)
        return last
    }

    /// logits[R, V] = hidden[R, C] · Wᵀ.
    public func logits(_ hidden: UnsafePointer<Float>, rows: Int) -> FloatBuffer {
        let out = FloatBuffer(count: rows * config.vocabularySize)
        logits(hidden, rows: rows, into: out.pointer)
        return out
    }

    /// `logits` into a caller's [R, V] buffer.
    public func logits(_ hidden: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        outputWeight.forward(
            out: out, input: hidden, rows: rows, inFeatures: config.hiddenSize, outFeatures: config.vocabularySize)
    }
}

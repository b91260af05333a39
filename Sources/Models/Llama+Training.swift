// Training forward (saving what backward needs) and backward of LlamaModel.
// Saved per layer: the residual input x, rstd of both norms, q/k (after RoPE), v, attention output and
// lse, the mid residual h, gate and up. The normalised inputs n₁, n₂ and the SwiGLU output are
// recomputed in backward (cheap, memory-bound) instead of stored.

import TensorCore

/// Activations of one training forward pass, sized for one batch shape.
public final class LlamaActivations: @unchecked Sendable {
    /// Current batch shape (any B·T up to `capacity` tokens; set by `forward`).
    public private(set) var batchSize: Int
    public private(set) var length: Int
    /// Tokens the buffers hold.
    public let capacity: Int
    var tokens: [Int32]
    var positions: [Int32]
    var keyMask: FloatBuffer?
    /// The batch's shared prefixes, as attention needs them (nil: plain rows).
    var prefixes: PrefixAttention?
    let x: [FloatBuffer]  // [L+1][N, C]: x[0] = embeddings, x[l+1] = output of layer l
    let rstd1, rstd2: [FloatBuffer]  // [L][N]
    let q: [FloatBuffer]  // [L][N, Hq·D] after RoPE
    let k, v: [FloatBuffer]  // [L][N, Hkv·D] (k after RoPE)
    let attn: [FloatBuffer]  // [L][N, Hq·D] attention output (before o_proj)
    let lse: [FloatBuffer]  // [L][B, Hq, T]
    let mid: [FloatBuffer]  // [L][N, C] residual after attention
    let gate, up: [FloatBuffer]  // [L][N, F]
    let finalRstd: FloatBuffer  // [N]
    /// [N, C] final normalised hidden state (input of the vocabulary projection).
    public let output: FloatBuffer
    let lora: LoRAActivations
    /// The adapter the last `forward` ran through (nil = the bare base); `backward` differentiates through
    /// this one, whatever other forwards ran in between.
    public internal(set) var adapter: LoRAAdapter?
    /// Seed of this forward's LoRA dropout masks (set per micro-batch by trainers).
    public var dropoutSeed: UInt64 {
        get { lora.seed }
        set { lora.seed = newValue }
    }
    /// Training mode enables LoRA dropout.
    public var isTraining: Bool {
        get { lora.isTraining }
        set { lora.isTraining = newValue }
    }

    /// Activation checkpointing: only the residual stream x is kept per layer; every other buffer is
    /// shared by all layers and recomputed layer by layer in backward (one extra forward, ~⅓ more
    /// compute, activation memory ≈ 1/10).
    public let isCheckpointed: Bool

    public init(config c: LlamaConfig, batchSize: Int, length: Int, checkpointed: Bool = false) {
        let n = batchSize * length, layers = c.layerCount
        self.batchSize = batchSize
        self.length = length
        capacity = n
        isCheckpointed = checkpointed
        tokens = []
        positions = []
        func make(_ count: Int, _ copies: Int) -> [FloatBuffer] {
            if checkpointed {
                let shared = FloatBuffer(count: count, hugePages: true); return Array(repeating: shared, count: copies)
            }
            return (0..<copies).map { _ in FloatBuffer(count: count, hugePages: true) }
        }
        x = (0...layers).map { _ in FloatBuffer(count: n * c.hiddenSize, hugePages: true) }
        rstd1 = make(n, layers)
        rstd2 = make(n, layers)
        q = make(n * c.qDim, layers)
        k = make(n * c.kvDim, layers)
        v = make(n * c.kvDim, layers)
        attn = make(n * c.qDim, layers)
        lse = make(batchSize * c.headCount * length, layers)
        mid = make(n * c.hiddenSize, layers)
        gate = make(n * c.intermediateSize, layers)
        up = make(n * c.intermediateSize, layers)
        finalRstd = FloatBuffer(count: n)
        output = FloatBuffer(count: n * c.hiddenSize)
        lora = LoRAActivations(layers: layers)
    }

    public var tokenCount: Int { prefixTokens + batchSize * length }

    /// Uses the buffers for a batch of shape B×T plus `extra` prefix tokens (B·T + extra ≤ capacity).
    func reshape(batchSize b: Int, length t: Int, extra: Int = 0) {
        precondition(
            b * t + extra <= capacity,
            "batch \(b)×\(t) + \(extra) exceeds the activations' capacity of \(capacity) tokens")
        batchSize = b
        length = t
        prefixTokens = extra
    }

    /// Tokens before the rows' own (the shared prefix rows).
    public private(set) var prefixTokens = 0
}

/// Attention over a batch with shared prefixes (`TokenBatch.SharedPrefixes`): the G prefix rows (Tp tokens,
/// first in the flat order) attend causally among themselves; each of the B rows' own Ts tokens attends to its
/// prefix row's keys and then its own, causally, through a gathered copy [B, Tp + Ts] of those keys and values —
/// the KV-cache form of attention (query t sits at position Tp + t), so one kernel serves both parts. In backward
/// the copy's key and value gradients go back to their rows, a prefix row's summed over the rows that continue it.
struct PrefixAttention {
    let prefixRows: Int, prefixLength: Int, ofRow: [Int]
    /// [G, Tp] additive mask of the prefix rows; [B, Tp + Ts] of each row's joined keys (nil: nothing masked).
    let prefixMask: FloatBuffer?, joinedMask: FloatBuffer?

    init(_ p: TokenBatch.SharedPrefixes, batch: TokenBatch) {
        prefixRows = p.count
        prefixLength = p.length
        ofRow = p.ofRow
        prefixMask = p.keyMask.contains(-.infinity) ? FloatBuffer(p.keyMask) : nil
        let t = batch.length
        var joined = [Float]()
        joined.reserveCapacity(batch.batchSize * (p.length + t))
        for b in 0..<batch.batchSize {
            joined += p.keyMask[(p.ofRow[b] * p.length)..<((p.ofRow[b] + 1) * p.length)]
            joined += batch.keyMask.map { Array($0[(b * t)..<((b + 1) * t)]) } ?? [Float](repeating: 0, count: t)
        }
        joinedMask = joined.contains(-.infinity) ? FloatBuffer(joined) : nil
    }

    func prefixShape(_ c: LlamaConfig) -> AttentionShape {
        AttentionShape(
            batch: prefixRows, queryLength: prefixLength, keyLength: prefixLength, queryHeads: c.headCount,
            kvHeads: c.kvHeadCount, headDim: c.headDim)
    }

    func ownShape(_ c: LlamaConfig, rows: Int, length: Int) -> AttentionShape {
        AttentionShape(
            batch: rows, queryLength: length, keyLength: prefixLength + length, queryHeads: c.headCount,
            kvHeads: c.kvHeadCount, headDim: c.headDim)
    }

    /// Copies each row's prefix keys (values) and own keys (values) from `source` ([N, Hkv·D], prefix rows first)
    /// into `joined` ([B, Tp + Ts, Hkv·D]).
    func gather(
        _ source: UnsafePointer<Float>, into joined: UnsafeMutablePointer<Float>, rows: Int, length: Int, width: Int
    ) {
        let tp = prefixLength, own = prefixRows * tp
        for b in 0..<rows {
            let row = joined + b * (tp + length) * width
            row.update(from: source + ofRow[b] * tp * width, count: tp * width)
            (row + tp * width).update(from: source + (own + b * length) * width, count: length * width)
        }
    }

    /// Adds the joined copy's gradients back into `grad` ([N, Hkv·D]).
    func scatter(
        _ joined: UnsafePointer<Float>, into grad: UnsafeMutablePointer<Float>, rows: Int, length: Int, width: Int
    ) {
        let tp = prefixLength, own = prefixRows * tp
        for b in 0..<rows {
            let row = joined + b * (tp + length) * width, prefix = grad + ofRow[b] * tp * width
            Elementwise.add(prefix, prefix, row, count: tp * width)
            let mine = grad + (own + b * length) * width
            Elementwise.add(mine, mine, row + tp * width, count: length * width)
        }
    }
}

extension LlamaModel {
    /// Runs the decoder over `batch` through `adapter` (nil = the bare base), filling `acts` and recording
    /// the adapter in them; returns acts.output ([N, C], after the final norm).
    @discardableResult
    public func forward(_ batch: TokenBatch, adapter: LoRAAdapter?, into acts: LlamaActivations) -> FloatBuffer {
        checkAdapter(adapter)
        acts.reshape(batchSize: batch.batchSize, length: batch.length, extra: batch.prefixTokenCount)
        acts.adapter = adapter
        let c = config, n = batch.tokenCount, C = c.hiddenSize
        acts.tokens = (batch.prefixes?.tokens ?? []) + batch.tokens
        acts.positions = (batch.prefixes?.positions ?? []) + batch.positions
        acts.keyMask = batch.keyMask.map(FloatBuffer.init)
        acts.prefixes = batch.prefixes.map { PrefixAttention($0, batch: batch) }
        let shape = AttentionShape(
            batch: batch.batchSize, queryLength: batch.length, keyLength: batch.length,
            queryHeads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim)
        let scratch = LayerScratch(tokens: n, config: c)
        embed(acts.tokens, into: acts.x[0].pointer)
        for l in 0..<c.layerCount { forwardLayer(l, acts: acts, shape: shape, scratch: scratch) }
        RMSNorm.forward(
            out: acts.output.pointer, rstd: acts.finalRstd.pointer, input: acts.x[c.layerCount].pointer,
            weight: weights.value("model.norm.weight"), rows: n, channels: C, epsilon: c.rmsNormEpsilon)
        return acts.output
    }

    /// Forward scratch buffers, reused across layers.
    struct LayerScratch {
        let normed: FloatBuffer, act: FloatBuffer
        init(tokens n: Int, config c: LlamaConfig, slot: String = "forward") {
            normed = Scratch.buffer("llama.\(slot).normed", count: n * c.hiddenSize)
            act = Scratch.buffer("llama.\(slot).act", count: n * c.intermediateSize)
        }
    }

    /// Layer l: reads acts.x[l], writes acts.x[l+1] and the layer's saved activations.
    func forwardLayer(_ l: Int, acts: LlamaActivations, shape: AttentionShape, scratch: LayerScratch) {
        let c = config, n = acts.tokenCount, C = c.hiddenSize, F = c.intermediateSize
        let w = layerWeights[l], x = acts.x[l].pointer, normed = scratch.normed.pointer, a = acts.adapter
        RMSNorm.forward(
            out: normed, rstd: acts.rstd1[l].pointer, input: x, weight: w.norm1.value,
            rows: n, channels: C, epsilon: c.rmsNormEpsilon)
        project(.q, layer: l, out: acts.q[l].pointer, input: normed, rows: n, adapter: a, lora: acts.lora)
        project(.k, layer: l, out: acts.k[l].pointer, input: normed, rows: n, adapter: a, lora: acts.lora)
        project(.v, layer: l, out: acts.v[l].pointer, input: normed, rows: n, adapter: a, lora: acts.lora)
        acts.positions.withUnsafeBufferPointer { pos in
            rope.apply(acts.q[l].pointer, positions: pos.baseAddress!, tokens: n, heads: c.headCount)
            rope.apply(acts.k[l].pointer, positions: pos.baseAddress!, tokens: n, heads: c.kvHeadCount)
        }
        if let p = acts.prefixes {
            let (ownQ, ownLSE) = (acts.prefixTokens * c.qDim, p.prefixRows * c.headCount * p.prefixLength)
            Attention.forward(
                out: acts.attn[l].pointer, lse: acts.lse[l].pointer, q: acts.q[l].pointer, k: acts.k[l].pointer,
                v: acts.v[l].pointer, keyMask: p.prefixMask?.pointer, shape: p.prefixShape(c))
            let (k, v) = joinedKeys(l, acts: acts, p)
            Attention.forward(
                out: acts.attn[l].pointer + ownQ, lse: acts.lse[l].pointer + ownLSE, q: acts.q[l].pointer + ownQ,
                k: k, v: v, keyMask: p.joinedMask?.pointer,
                shape: p.ownShape(c, rows: acts.batchSize, length: acts.length))
        } else {
            Attention.forward(
                out: acts.attn[l].pointer, lse: acts.lse[l].pointer, q: acts.q[l].pointer,
                k: acts.k[l].pointer, v: acts.v[l].pointer, keyMask: acts.keyMask?.pointer, shape: shape)
        }
        let h = acts.mid[l].pointer
        h.update(from: x, count: n * C)
        project(
            .o, layer: l, out: h, input: acts.attn[l].pointer, rows: n, accumulate: true, adapter: a, lora: acts.lora)
        RMSNorm.forward(
            out: normed, rstd: acts.rstd2[l].pointer, input: h, weight: w.norm2.value,
            rows: n, channels: C, epsilon: c.rmsNormEpsilon)
        project(.gate, layer: l, out: acts.gate[l].pointer, input: normed, rows: n, adapter: a, lora: acts.lora)
        project(.up, layer: l, out: acts.up[l].pointer, input: normed, rows: n, adapter: a, lora: acts.lora)
        SwiGLU.forward(out: scratch.act.pointer, gate: acts.gate[l].pointer, up: acts.up[l].pointer, count: n * F)
        let out = acts.x[l + 1].pointer
        out.update(from: h, count: n * C)
        project(
            .down, layer: l, out: out, input: scratch.act.pointer, rows: n, accumulate: true, adapter: a,
            lora: acts.lora)
    }

    /// Layer l's keys and values gathered per row behind its shared prefix (`PrefixAttention.gather`), in scratch.
    func joinedKeys(_ l: Int, acts: LlamaActivations, _ p: PrefixAttention) -> (
        UnsafePointer<Float>, UnsafePointer<Float>
    ) {
        let c = config, count = acts.batchSize * (p.prefixLength + acts.length) * c.kvDim
        let k = Scratch.buffer("llama.prefix.k", count: count), v = Scratch.buffer("llama.prefix.v", count: count)
        p.gather(acts.k[l].pointer, into: k.pointer, rows: acts.batchSize, length: acts.length, width: c.kvDim)
        p.gather(acts.v[l].pointer, into: v.pointer, rows: acts.batchSize, length: acts.length, width: c.kvDim)
        return (UnsafePointer(k.pointer), UnsafePointer(v.pointer))
    }

    /// Backpropagates dOutput ([N, C], gradient of the final hidden state) through the decoder,
    /// accumulating into `weights.gradients` and the gradients of the adapter the forward ran through
    /// (`acts.adapter`). The vocabulary projection's own gradient is the loss's job (TokenLogProbs.backward
    /// adds it to `outputWeightGradient`).
    public func backward(dOutput: UnsafePointer<Float>, acts: LlamaActivations) {
        precondition(
            weights.isTrainable || acts.adapter != nil,
            "backward with nothing trainable (frozen base, forward without an adapter)")
        let a = acts.adapter, c = config, n = acts.tokenCount, C = c.hiddenSize, F = c.intermediateSize
        let shape = AttentionShape(
            batch: acts.batchSize, queryLength: acts.length, keyLength: acts.length,
            queryHeads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim)
        // Scratch reused across steps (every buffer is written before it is read; dk/dv are zeroed below).
        func scratch(_ name: String, _ count: Int) -> FloatBuffer {
            Scratch.buffer("llama.backward." + name, count: count)
        }
        let dx = scratch("dx", n * C), normed = scratch("normed", n * C), dNormed = scratch("dNormed", n * C)
        let act = scratch("act", n * F), dAct = scratch("dAct", n * F), dGate = scratch("dGate", n * F),
            dUp = scratch("dUp", n * F)
        let dq = scratch("dq", n * c.qDim), dk = scratch("dk", n * c.kvDim), dv = scratch("dv", n * c.kvDim)
        let dAttn = scratch("dAttn", n * c.qDim)
        let finalNorm = Param(weights, "model.norm.weight")
        RMSNorm.backward(
            dInput: dx.pointer, dWeight: finalNorm.grad, dOut: dOutput, input: acts.x[c.layerCount].pointer,
            weight: finalNorm.value, rstd: acts.finalRstd.pointer, rows: n, channels: C)
        let recompute = acts.isCheckpointed ? LayerScratch(tokens: n, config: c, slot: "recompute") : nil
        for l in stride(from: c.layerCount - 1, through: 0, by: -1) {
            // Rebuild layer l's activations (deterministic: x[l+1] is rewritten with identical values).
            if let recompute { forwardLayer(l, acts: acts, shape: shape, scratch: recompute) }
            let w = layerWeights[l], h = acts.mid[l].pointer
            // MLP: x' = h + W_down · act,  act = SiLU(g) ⊙ u
            SwiGLU.forward(out: act.pointer, gate: acts.gate[l].pointer, up: acts.up[l].pointer, count: n * F)
            projectBackward(
                .down, layer: l, dInput: dAct.pointer, dOut: dx.pointer, input: act.pointer, rows: n,
                accumulate: false, adapter: a, lora: acts.lora)
            SwiGLU.backward(
                dGate: dGate.pointer, dUp: dUp.pointer, dOut: dAct.pointer, gate: acts.gate[l].pointer,
                up: acts.up[l].pointer, count: n * F)
            RMSNorm.forward(
                out: normed.pointer, rstd: nil, input: h, weight: w.norm2.value, rows: n, channels: C,
                epsilon: c.rmsNormEpsilon)
            projectBackward(
                .gate, layer: l, dInput: dNormed.pointer, dOut: dGate.pointer, input: normed.pointer, rows: n,
                accumulate: false, adapter: a, lora: acts.lora)
            projectBackward(
                .up, layer: l, dInput: dNormed.pointer, dOut: dUp.pointer, input: normed.pointer, rows: n,
                accumulate: true, adapter: a, lora: acts.lora)
            RMSNorm.backward(
                dInput: dx.pointer, dWeight: w.norm2.grad, dOut: dNormed.pointer, input: h, weight: w.norm2.value,
                rstd: acts.rstd2[l].pointer, rows: n, channels: C, accumulateInput: true)
            // Attention: h = x + W_o · attn
            projectBackward(
                .o, layer: l, dInput: dAttn.pointer, dOut: dx.pointer, input: acts.attn[l].pointer, rows: n,
                accumulate: false, adapter: a, lora: acts.lora)
            dk.pointer.update(repeating: 0, count: n * c.kvDim)
            dv.pointer.update(repeating: 0, count: n * c.kvDim)
            if let p = acts.prefixes {
                let (ownQ, ownLSE) = (acts.prefixTokens * c.qDim, p.prefixRows * c.headCount * p.prefixLength)
                let (k, v) = joinedKeys(l, acts: acts, p)
                let joined = acts.batchSize * (p.prefixLength + acts.length) * c.kvDim
                let dkJoined = scratch("dkJoined", joined), dvJoined = scratch("dvJoined", joined)
                dkJoined.pointer.update(repeating: 0, count: joined)
                dvJoined.pointer.update(repeating: 0, count: joined)
                Attention.backward(
                    dq: dq.pointer + ownQ, dk: dkJoined.pointer, dv: dvJoined.pointer, dOut: dAttn.pointer + ownQ,
                    out: acts.attn[l].pointer + ownQ, lse: acts.lse[l].pointer + ownLSE, q: acts.q[l].pointer + ownQ,
                    k: k, v: v, keyMask: p.joinedMask?.pointer,
                    shape: p.ownShape(c, rows: acts.batchSize, length: acts.length))
                p.scatter(dkJoined.pointer, into: dk.pointer, rows: acts.batchSize, length: acts.length, width: c.kvDim)
                p.scatter(dvJoined.pointer, into: dv.pointer, rows: acts.batchSize, length: acts.length, width: c.kvDim)
                Attention.backward(
                    dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, dOut: dAttn.pointer, out: acts.attn[l].pointer,
                    lse: acts.lse[l].pointer, q: acts.q[l].pointer, k: acts.k[l].pointer, v: acts.v[l].pointer,
                    keyMask: p.prefixMask?.pointer, shape: p.prefixShape(c))
            } else {
                Attention.backward(
                    dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, dOut: dAttn.pointer, out: acts.attn[l].pointer,
                    lse: acts.lse[l].pointer, q: acts.q[l].pointer, k: acts.k[l].pointer, v: acts.v[l].pointer,
                    keyMask: acts.keyMask?.pointer, shape: shape)
            }
            acts.positions.withUnsafeBufferPointer { pos in
                rope.applyBackward(dq.pointer, positions: pos.baseAddress!, tokens: n, heads: c.headCount)
                rope.applyBackward(dk.pointer, positions: pos.baseAddress!, tokens: n, heads: c.kvHeadCount)
            }
            let x = acts.x[l].pointer
            RMSNorm.forward(
                out: normed.pointer, rstd: nil, input: x, weight: w.norm1.value, rows: n, channels: C,
                epsilon: c.rmsNormEpsilon)
            projectBackward(
                .q, layer: l, dInput: dNormed.pointer, dOut: dq.pointer, input: normed.pointer, rows: n,
                accumulate: false, adapter: a, lora: acts.lora)
            projectBackward(
                .k, layer: l, dInput: dNormed.pointer, dOut: dk.pointer, input: normed.pointer, rows: n,
                accumulate: true, adapter: a, lora: acts.lora)
            projectBackward(
                .v, layer: l, dInput: dNormed.pointer, dOut: dv.pointer, input: normed.pointer, rows: n,
                accumulate: true, adapter: a, lora: acts.lora)
            RMSNorm.backward(
                dInput: dx.pointer, dWeight: w.norm1.grad, dOut: dNormed.pointer, input: x, weight: w.norm1.value,
                rstd: acts.rstd1[l].pointer, rows: n, channels: C, accumulateInput: true)
        }
        if weights.entry("model.embed_tokens.weight") != nil, let dE = weights.gradient("model.embed_tokens.weight") {
            acts.tokens.withUnsafeBufferPointer { ids in
                Embedding.backward(dTable: dE, dOut: dx.pointer, ids: ids.baseAddress!, tokens: n, channels: C)
            }
        }
    }
}

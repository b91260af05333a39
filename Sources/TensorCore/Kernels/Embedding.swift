// Token embedding lookup. N = tokens, C = channels, V = vocabulary.

public enum Embedding {
    /// out[n] = table[ids[n]]
    public static func forward(
        out: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>, table: UnsafePointer<Float>,
        tokens: Int, channels c: Int, vocabulary v: Int
    ) {
        for n in 0..<tokens {
            let id = Int(ids[n])
            precondition(id >= 0 && id < v, "token id \(id) outside vocabulary of \(v)")
            (out + n &* c).update(from: table + id &* c, count: c)
        }
    }

    /// forward: y[n] = W[id_n]  ⇒  dW[id_n] += dy[n] (serial: repeated ids must not race).
    public static func backward(
        dTable: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, ids: UnsafePointer<Int32>,
        tokens: Int, channels c: Int
    ) {
        for n in 0..<tokens { Elementwise.axpy(dTable + Int(ids[n]) &* c, 1, dOut + n &* c, count: c) }
    }
}

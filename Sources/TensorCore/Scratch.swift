// Reusable scratch memory for kernels that need large temporaries (attention scores, vocabulary logit
// chunks). Allocating them per call cost a fresh mmap, kernel page clearing and our own zeroing every
// layer (≈ 0.9 GB per SmolLM2 training step); each thread keeps one grow-only buffer per slot instead.
// Contents are unspecified on return: callers overwrite before reading.

import Foundation

public enum Scratch {
    /// A buffer of at least `count` floats for `slot`, private to the calling thread.
    public static func buffer(_ slot: String, count: Int) -> FloatBuffer {
        let key = "rlhf.scratch." + slot
        let dict = Thread.current.threadDictionary
        if let b = dict[key] as? FloatBuffer, b.count >= count { return b }
        let b = FloatBuffer(count: count, hugePages: true)
        dict[key] = b
        return b
    }

    /// Releases the calling thread's scratch buffers (e.g. after training, before generation).
    public static func releaseAll() {
        let dict = Thread.current.threadDictionary
        for key in dict.allKeys.compactMap({ $0 as? String }) where key.hasPrefix("rlhf.scratch.") {
            dict.removeObject(forKey: key)
        }
    }
}

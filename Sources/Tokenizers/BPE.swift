// Byte-pair encoding of one pre-tokenized word (Sennrich et al. 2016, "Neural Machine Translation
// of Rare Words with Subword Units"; byte-level variant of GPT-2). Merges apply lowest rank first,
// leftmost first among equal ranks, as in HF `tokenizers` `Word::merge_all` and llama.cpp
// `llm_tokenizer_bpe_session`. Pairs are keyed by token ids, never by strings.

/// The merge table: for a pair of token ids, its rank (index in the merge list) and result id.
struct MergeTable: Sendable {
    /// `left << 32 | right` → `rank << 32 | merged`.
    private var table: [UInt64: UInt64] = [:]

    init(capacity: Int) {
        table.reserveCapacity(capacity)
    }

    var count: Int { table.count }

    /// Adds a rule; an earlier (lower-rank) rule for the same pair wins, as in llama.cpp.
    mutating func insert(left: Int32, right: Int32, rank: Int32, merged: Int32) {
        let key = UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
        if table[key] == nil {
            table[key] = UInt64(UInt32(rank)) << 32 | UInt64(UInt32(merged))
        }
    }

    /// `(rank, merged id)` for a pair, or nil when the pair never merges.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> (rank: Int32, merged: Int32)? {
        guard let value = table[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))] else {
            return nil
        }
        return (Int32(truncatingIfNeeded: value >> 32), Int32(truncatingIfNeeded: value))
    }

    /// Merges `symbols` (initially one token id per byte) in place until no pair has a rule.
    /// O(n²) integer compares for short words, O(n log n) with a heap for long ones.
    func apply(to symbols: inout [Int32]) {
        if symbols.count < 2 { return }
        if symbols.count <= 64 {
            applyByScanning(to: &symbols)
        } else {
            applyWithHeap(to: &symbols)
        }
    }

    /// Keeps the rank of every adjacent pair in an array and rescans it for the minimum.
    func applyByScanning(to symbols: inout [Int32]) {
        let none = Int32.max
        var ranks = [Int32](repeating: none, count: symbols.count - 1)
        var results = [Int32](repeating: -1, count: symbols.count - 1)
        for index in 0..<ranks.count {
            if let rule = lookup(symbols[index], symbols[index + 1]) {
                ranks[index] = rule.rank
                results[index] = rule.merged
            }
        }
        while !ranks.isEmpty {
            var best = 0
            for index in 1..<ranks.count where ranks[index] < ranks[best] { best = index }
            if ranks[best] == none { break }
            symbols[best] = results[best]
            symbols.remove(at: best + 1)
            ranks.remove(at: best)
            results.remove(at: best)
            for index in [best - 1, best] where index >= 0 && index < ranks.count {
                if let rule = lookup(symbols[index], symbols[index + 1]) {
                    ranks[index] = rule.rank
                    results[index] = rule.merged
                } else {
                    ranks[index] = none
                }
            }
        }
    }

    /// llama.cpp's scheme: a doubly linked list of symbols and a min-heap of candidate pairs
    /// keyed by `rank << 32 | position`; entries made stale by earlier merges are skipped.
    func applyWithHeap(to symbols: inout [Int32]) {
        let count = symbols.count
        var previous = [Int](0..<count).map { $0 - 1 }
        var next = [Int](1...count)
        var heap = MinHeap()
        for index in 0..<(count - 1) {
            if let rule = lookup(symbols[index], symbols[index + 1]) {
                heap.push(UInt64(UInt32(rule.rank)) << 32 | UInt64(index))
            }
        }
        while let entry = heap.pop() {
            let rank = Int32(truncatingIfNeeded: entry >> 32)
            let left = Int(UInt32(truncatingIfNeeded: entry))
            let right = next[left]
            guard symbols[left] >= 0, right < count,
                let rule = lookup(symbols[left], symbols[right]), rule.rank == rank
            else { continue }
            symbols[left] = rule.merged
            symbols[right] = -1
            next[left] = next[right]
            if next[left] < count { previous[next[left]] = left }
            if previous[left] >= 0, let rule = lookup(symbols[previous[left]], symbols[left]) {
                heap.push(UInt64(UInt32(rule.rank)) << 32 | UInt64(previous[left]))
            }
            if next[left] < count, let rule = lookup(symbols[left], symbols[next[left]]) {
                heap.push(UInt64(UInt32(rule.rank)) << 32 | UInt64(left))
            }
        }
        symbols.removeAll { $0 < 0 }
    }
}

/// A binary min-heap of packed `rank << 32 | position` keys.
private struct MinHeap {
    private var keys: [UInt64] = []

    mutating func push(_ key: UInt64) {
        keys.append(key)
        var child = keys.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if keys[parent] <= keys[child] { break }
            keys.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let last = keys.popLast() else { return nil }
        guard !keys.isEmpty else { return last }
        let top = keys[0]
        keys[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            if left >= keys.count { break }
            let right = left + 1
            let smaller = right < keys.count && keys[right] < keys[left] ? right : left
            if keys[parent] <= keys[smaller] { break }
            keys.swapAt(parent, smaller)
            parent = smaller
        }
        return top
    }
}

/// A bounded word → token ids cache. When full it is emptied, which keeps memory bounded without
/// bookkeeping; typical text re-fills it with its frequent words at once.
struct WordCache: ~Copyable {
    private var entries: [[UInt8]: [Int32]] = [:]
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func ids(for word: [UInt8]) -> [Int32]? { entries[word] }

    mutating func insert(_ ids: [Int32], for word: [UInt8]) {
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[word] = ids
    }
}

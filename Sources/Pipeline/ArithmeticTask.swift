// The demo's built-in task, written by the project (no external text): short arithmetic questions generated
// from a seed, a programmatic gold judge that plays the role of Gao et al. (2022)'s gold reward model, and
// simulated annotators who label pairs with Bradley–Terry noise and a rate of outright flips.
//
// The gold judge (documented in the README): a reply earns
//   +1.0  when its last number is the right result (correctness),
//   +0.2  when it states both operands (on topic),
//   +0.3  when it finished by itself (an end-of-turn token, not cut at the length limit),
//   −0.05 per word beyond 12 words, at most −0.6 (concision),
//   −0.8 × the share of repeated word bigrams (no repetition).
// So a clean "12 + 30 = 42." scores 1.5; a rambling right answer cut at the limit about 0.6; a wrong one ≤ 0.5.

import Foundation
import TensorCore

public struct TaskPrompt: Codable, Sendable, Equatable, Hashable {
    public enum Kind: String, Codable, Sendable { case sum, difference }
    public var kind: Kind
    public var a: Int, b: Int
    /// Which phrasing of the question (several, so the prompts are not one string with two numbers).
    public var phrasing: Int

    public var result: Int { kind == .sum ? a + b : a - b }
    public var question: String {
        let op = kind == .sum ? "+" : "-"
        switch phrasing % 4 {
        case 0: return "What is \(a) \(op) \(b)?"
        case 1: return kind == .sum ? "Add \(a) and \(b)." : "Subtract \(b) from \(a)."
        case 2: return "Compute \(a) \(op) \(b) and give the result."
        default: return kind == .sum ? "What do you get when you add \(a) to \(b)?" : "What is \(b) less than \(a)?"
        }
    }

    /// Demonstrations the demo writes itself: a few correct, concise reply styles.
    public func demonstration(style: Int) -> String {
        let op = kind == .sum ? "+" : "-"
        switch style % 3 {
        case 0: return "\(a) \(op) \(b) = \(result)."
        case 1: return "The answer is \(result)."
        default: return "\(a) \(op) \(b) is \(result)."
        }
    }

    /// `count` prompts of `kind`: sums of two numbers below 50; differences a − b with a ≥ b.
    public static func make(_ count: Int, kind: Kind, rng: inout RNG) -> [TaskPrompt] {
        (0..<count).map { _ in
            var a = Int(rng.next() % 50), b = Int(rng.next() % 50)
            if kind == .difference && a < b { swap(&a, &b) }
            return TaskPrompt(kind: kind, a: a, b: b, phrasing: Int(rng.next() % 4))
        }
    }
}

public enum GoldJudge {
    public static let targetWords = 12

    /// The gold reward of `reply` to `prompt` (see the file header); `finished`: it ended with a stop token.
    public static func score(_ reply: String, to prompt: TaskPrompt, finished: Bool) -> Double {
        let numbers = numbersIn(reply)
        var score = 0.0
        if numbers.last == prompt.result { score += 1 }
        if numbers.contains(prompt.a) && numbers.contains(prompt.b) { score += 0.2 }
        if finished { score += 0.3 }
        let words = reply.split(whereSeparator: \.isWhitespace).map { $0.lowercased() }
        score -= min(0.6, 0.05 * Double(max(0, words.count - targetWords)))
        score -= 0.8 * repetition(words)
        return score
    }

    /// The integers in `text` in order (a leading minus sign counts).
    static func numbersIn(_ text: String) -> [Int] {
        var out: [Int] = [], current = "", negative = false
        var previous: Character = " "
        func flush() {
            if let n = Int(current) { out.append(negative ? -n : n) }
            current = ""
            negative = false
        }
        for ch in text {
            if ch.isASCII && ch.isNumber {
                if current.isEmpty { negative = previous == "-" }
                current.append(ch)
            } else if !current.isEmpty {
                flush()
            }
            previous = ch
        }
        flush()
        return out
    }

    /// The share of word bigrams that already occurred earlier in the reply (0 for fewer than 4 words).
    static func repetition(_ words: [String]) -> Double {
        guard words.count >= 4 else { return 0 }
        var seen = Set<String>(), repeated = 0
        for i in 1..<words.count {
            let bigram = words[i - 1] + " " + words[i]
            if !seen.insert(bigram).inserted { repeated += 1 }
        }
        return Double(repeated) / Double(words.count - 1)
    }
}

/// Annotators who compare two replies: they prefer A with probability σ((gold_A − gold_B)/τ) (Bradley–Terry
/// over the gold reward; Christiano et al. 2017 eq. 1) and then, at `flipRate`, report the opposite (the seed's
/// "annotators often disagree").
public struct SimulatedAnnotators: Codable, Sendable, Equatable {
    public var temperature: Double
    public var flipRate: Double

    public init(temperature: Double, flipRate: Double) {
        self.temperature = temperature
        self.flipRate = flipRate
    }

    /// The probability that a label says A is better.
    public func probabilityAPreferred(goldA: Double, goldB: Double) -> Double {
        let p = 1 / (1 + exp(-(goldA - goldB) / temperature))
        return p * (1 - flipRate) + (1 - p) * flipRate
    }

    /// One label: true when A is reported better.
    public func prefersA(goldA: Double, goldB: Double, rng: inout RNG) -> Bool {
        Double(rng.next() >> 11) / Double(1 << 53) < probabilityAPreferred(goldA: goldA, goldB: goldB)
    }
}

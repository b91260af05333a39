// What scores a rollout: a Swift closure (programmatic rewards) or a trained reward model, behind one type.
// Built-ins for the CLI: a length target and a regex match. A non-finite reward is an error naming the
// prompt, never a silent NaN in the update.

import Foundation
import Models

/// One completion to score.
public struct Rollout: Sendable {
    public var promptIDs: [Int32]
    public var completionIDs: [Int32]
    /// The completion decoded (special tokens skipped).
    public var text: String
    /// Whether it ended with a stop token (false: cut at max_completion_length).
    public var stopped: Bool
    /// The prompt record's reference answer, if it has one.
    public var answer: String? = nil
}

public struct RewardFunction: @unchecked Sendable {
    public let name: String
    let score: ([Rollout]) throws -> [Double]

    /// A closure over one rollout.
    public init(name: String, _ f: @escaping (Rollout) throws -> Double) {
        self.name = name
        score = { try $0.map(f) }
    }

    /// A closure over a batch of rollouts (one reward each), for rewards that score in batches.
    public init(name: String, batch: @escaping ([Rollout]) throws -> [Double]) {
        self.name = name
        score = batch
    }

    /// A trained reward model over prompt + completion (normalised with its stored statistics when `normalize`).
    public init(rewardModel rm: RewardModel, normalize: Bool = true, batchSize: Int = 8) {
        name = "reward_model"
        score = { rollouts in
            let raw = try rm.scores(
                rollouts.map { $0.promptIDs + $0.completionIDs }, promptLengths: rollouts.map(\.promptIDs.count),
                batchSize: batchSize)
            return normalize ? raw.map(rm.normalized) : raw
        }
    }

    /// −|tokens − target| / target: 0 at the target length.
    public static func lengthTarget(_ target: Int) -> RewardFunction {
        RewardFunction(name: "length_target") { -abs(Double($0.completionIDs.count - target)) / Double(max(1, target)) }
    }

    /// 1 when the completion contains a match of `pattern`, else 0.
    public static func regexMatch(_ pattern: String) throws -> RewardFunction {
        let regex = try NSRegularExpression(pattern: pattern)
        return RewardFunction(name: "regex") { r in
            regex.firstMatch(in: r.text, range: NSRange(r.text.startIndex..., in: r.text)) == nil ? 0 : 1
        }
    }

    /// 1 when the completion's final answer equals the prompt's reference answer, else 0 (math prompts: GSM8K's
    /// `#### 42`, `\boxed{42}`, or else the last number of the text; numbers compare by value, "1,000" = "1000.0").
    /// A prompt without an `answer` (or `solution`) field is an error.
    public static let exactAnswer = RewardFunction(name: "exact_answer") { r in
        guard let reference = r.answer else {
            throw ConfigError.invalid(
                field: "answer", value: "missing for the prompt of \"\(r.text.prefix(40))\"",
                expected: "an \"answer\" (or \"solution\") field in every prompt record for the exact-answer reward")
        }
        guard let expected = FinalAnswer.extract(reference), let found = FinalAnswer.extract(r.text) else { return 0 }
        return FinalAnswer.equal(expected, found) ? 1 : 0
    }

    /// The scores, each checked finite.
    func callAsFunction(_ rollouts: [Rollout]) throws -> [Double] {
        let s = try score(rollouts)
        precondition(s.count == rollouts.count, "one reward per rollout")
        if let i = s.firstIndex(where: { !$0.isFinite }) {
            throw ConfigError.invalid(
                field: "reward (\(name))", value: "\(s[i]) for the completion \"\(rollouts[i].text.prefix(60))\"",
                expected: "a finite number")
        }
        return s
    }
}

/// Final answers of math completions, as graders of GSM8K/MATH-style data read them.
enum FinalAnswer {
    /// The text after the last `####`, else the last `\boxed{…}`, else the last number; nil when there is none.
    static func extract(_ text: String) -> String? {
        if let r = text.range(of: "####", options: .backwards) {
            let tail = text[r.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
            let line = tail.split(separator: "\n").first.map(String.init) ?? tail
            return line.isEmpty ? nil : normalize(line)
        }
        if let r = text.range(of: "\\boxed{", options: .backwards) {
            var depth = 1, out = ""
            for c in text[r.upperBound...] {
                if c == "{" { depth += 1 } else if c == "}" { depth -= 1 }
                if depth == 0 { return normalize(out) }
                out.append(c)
            }
            return nil
        }
        let regex = try! NSRegularExpression(pattern: "-?[0-9][0-9,]*(\\.[0-9]+)?")
        let ns = text as NSString
        guard let m = regex.matches(in: text, range: NSRange(location: 0, length: ns.length)).last else { return nil }
        return normalize(ns.substring(with: m.range))
    }

    /// Without spaces, `$`, thousands commas and a trailing period.
    static func normalize(_ s: String) -> String {
        var t = s.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "$", with: "")
        if t.hasSuffix(".") { t.removeLast() }
        let numeric = t.replacingOccurrences(of: ",", with: "")
        return Double(numeric) != nil ? numeric : t
    }

    /// Equal as numbers when both are numbers, else as strings.
    static func equal(_ a: String, _ b: String) -> Bool {
        if let x = Double(a), let y = Double(b) { return x == y }
        return a == b
    }
}

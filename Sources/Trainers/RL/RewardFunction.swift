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
}

public struct RewardFunction: @unchecked Sendable {
    public let name: String
    let score: ([Rollout]) throws -> [Double]

    /// A closure over one rollout.
    public init(name: String, _ f: @escaping (Rollout) throws -> Double) {
        self.name = name
        score = { try $0.map(f) }
    }

    /// A trained reward model over prompt + completion (normalised with its stored statistics when `normalize`).
    public init(rewardModel rm: RewardModel, normalize: Bool = true, batchSize: Int = 8) {
        name = "reward_model"
        score = { rollouts in
            let raw = try rm.scores(rollouts.map { $0.promptIDs + $0.completionIDs }, batchSize: batchSize)
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

// Every figure `rlhf demo` produces, as one Codable value: each stage's result is saved on its own when the stage
// finishes (so an interrupted demo resumes from its last finished stage), and `report.json` is the whole value.

import Foundation

/// A point of a curve (training step or iteration → value).
public struct CurvePoint: Codable, Sendable, Equatable {
    public var x: Double, y: Double
    public init(_ x: Double, _ y: Double) {
        self.x = x
        self.y = y
    }
}

/// A sampled reply with the gold judge's score.
public struct SampleReply: Codable, Sendable, Equatable {
    public var prompt: String
    public var reply: String
    public var gold: Double
    public var words: Int
}

/// Gold reward of a policy's greedy replies on the evaluation prompts, and its win-rate against the policy it
/// improves on (`opponent`).
public struct PolicyEvaluation: Codable, Sendable, Equatable {
    public var meanGold: Double
    public var correct: Double
    public var meanWords: Double
    /// Wins + ½ ties of the gold judge's comparison with the opponent's reply to the same prompt.
    public var winRate: Double?
    /// What `winRate` (and the sampled one) is against: "base" for SFT, "SFT" for PPO/DPO/GRPO, "one SFT sample" for
    /// best-of-n; nil for the base model.
    public var opponent: String?
    public var samples: [SampleReply]
    /// The same policy's sampled replies (nil where only one reply per prompt was taken, as for best-of-n).
    public var sampled: SampledEvaluation? = nil
}

/// A policy's replies sampled at the demo's temperature, `eval_samples` per evaluation prompt: the distribution RL
/// optimises and its KL is measured on (Gao et al. score a policy by its samples, not by its mode).
public struct SampledEvaluation: Codable, Sendable, Equatable {
    public var meanGold: Double
    public var goldStdErr: Double
    public var meanWords: Double
    /// Wins + ½ ties against the opponent's sample of the same prompt and index (same seed).
    public var winRate: Double?
    /// Each reply's gold reward, prompt by prompt (what later policies' win-rates compare with).
    public var gold: [Double]
}

public struct StageTiming: Codable, Sendable, Equatable {
    public var stage: String
    public var seconds: Double
    /// Peak resident memory of the process when the stage ended (MB).
    public var peakRSSMB: Double
}

public struct BaselineResult: Codable, Sendable, Equatable {
    public var base: PolicyEvaluation
}

public struct SFTResult: Codable, Sendable, Equatable {
    public var examples: Int
    public var loss: [CurvePoint]
    public var policy: PolicyEvaluation
    /// The exported adapter, relative to the demo's output directory.
    public var adapter: String
}

public struct PairsResult: Codable, Sendable, Equatable {
    public var trainPairs: Int
    /// Share of the annotators' labels that agree with the gold judge's noise-free preference.
    public var labelAgreement: Double
    public var heldOutPairs: Int
    public var oodPairs: Int
    /// Identical sample pairs dropped (nothing to compare).
    public var dropped: Int
}

public struct RewardResult: Codable, Sendable, Equatable {
    public var loss: [CurvePoint]
    public var trainAccuracy: [CurvePoint]
    /// Accuracy against gold labels on held-out sums (in distribution) and on differences (another kind).
    public var heldOutAccuracy: Double
    public var oodAccuracy: Double
    /// Pearson correlation with the reply's length in words, of the proxy and of the gold judge (bias).
    public var proxyLengthCorrelation: Double
    public var goldLengthCorrelation: Double
    public var directory: String
}

/// One PPO iteration (or one best-of-n size): where the policy is and what the proxy and gold make of it.
public struct OptimisationPoint: Codable, Sendable, Equatable {
    public var x: Double
    public var kl: Double
    public var d: Double
    /// Mean proxy (normalised reward-model score) and gold reward of the rollouts.
    public var proxy: Double
    public var gold: Double
    /// Standard error of `gold` (its samples' standard deviation / √count).
    public var goldStdErr: Double?
    public var words: Double
    public var klCoef: Double?
    /// Gold win-rate of these replies against the SFT policy's (held-out points).
    public var winRate: Double? = nil
    /// Standard error of the gold gain over the SFT policy, paired reply by reply (held-out points).
    public var gainStdErr: Double? = nil
}

public struct RLResult: Codable, Sendable, Equatable {
    /// One per iteration: the rollouts' proxy and gold (sampled at the PPO temperature, noisy).
    public var points: [OptimisationPoint]
    /// Every few iterations: sampled replies to the held-out evaluation prompts (the SFT policy first, at d = 0).
    public var heldOut: [OptimisationPoint]
    /// Held-out gold gain over the SFT policy against d, fitted with Gao et al.'s RL form.
    public var fit: GaoFit?
    public var overOptimisation: OverOptimisation
    public var policy: PolicyEvaluation
    public var loss: [CurvePoint]
    /// What the stage exported (relative to the output directory): the PEFT adapter and the merged GGUF.
    public var exports: [String]
}

public struct BestOfNResult: Codable, Sendable, Equatable {
    public var points: [OptimisationPoint]
    public var fit: GaoFit?
    public var overOptimisation: OverOptimisation
    public var policy: PolicyEvaluation
}

/// Whether (and where) the gold reward peaked while the proxy kept rising, read with the points' sampling noise.
public struct OverOptimisation: Codable, Sendable, Equatable {
    public var observed: Bool
    /// d and gold at the peak of the smoothed gold curve.
    public var peakD: Double
    public var peakGold: Double
    /// Proxy and gold change from the peak window to the last window.
    public var proxyAfterPeak: Double
    public var goldAfterPeak: Double
    /// Two standard errors of that gold change (what noise alone could do).
    public var goldNoise: Double
    public var explanation: String

    /// Reads points in the order they were made (PPO iterations; best-of-n sizes), averaged over `window`
    /// consecutive points: observed when the last window's gold is below the peak window's by more than two
    /// standard errors while its proxy is higher.
    public static func read(_ points: [OptimisationPoint], window: Int = 1) -> OverOptimisation {
        let w = max(1, min(window, points.count))
        guard points.count >= w, !points.isEmpty else {
            return OverOptimisation(
                observed: false, peakD: 0, peakGold: 0, proxyAfterPeak: 0, goldAfterPeak: 0, goldNoise: 0,
                explanation: "no points")
        }
        func mean(_ i: Int, _ f: (OptimisationPoint) -> Double) -> Double {
            points[i..<(i + w)].reduce(0) { $0 + f($1) } / Double(w)
        }
        func variance(_ i: Int) -> Double {
            points[i..<(i + w)].reduce(0) { $0 + ($1.goldStdErr ?? 0) * ($1.goldStdErr ?? 0) } / Double(w * w)
        }
        let starts = Array(0...(points.count - w)), last = points.count - w
        let peak = starts.max { mean($0, \.gold) < mean($1, \.gold) }!
        let dProxy = mean(last, \.proxy) - mean(peak, \.proxy), dGold = mean(last, \.gold) - mean(peak, \.gold)
        let noise = 2 * (variance(peak) + variance(last)).squareRoot()
        let peakD = mean(peak, \.d), lastD = mean(last, \.d)
        let observed = peak < last && -dGold > noise && dProxy > 0
        let explanation: String
        if observed {
            explanation = String(
                format: "gold peaked at d ≈ %.2f (%.3f) and fell by %.3f (noise ±%.3f) by d ≈ %.2f while the proxy "
                    + "rose by %.3f", peakD, mean(peak, \.gold), -dGold, noise, lastD, dProxy)
        } else if peak == last {
            explanation = String(
                format: "gold was still at its highest at the end (d ≈ %.2f): no over-optimisation within this "
                    + "budget (a weaker KL penalty or more iterations would go further)", lastD)
        } else if -dGold <= noise {
            explanation = String(
                format: "after the gold peak at d ≈ %.2f, gold changed by %+.3f, within the sampling noise (±%.3f): "
                    + "not distinguishable from a plateau", peakD, dGold, noise)
        } else {
            explanation = String(
                format: "gold fell by %.3f after its peak at d ≈ %.2f, but the proxy fell too (%+.3f): the policy "
                    + "got worse on both, not the proxy-up, gold-down pattern", -dGold, peakD, dProxy)
        }
        return OverOptimisation(
            observed: observed, peakD: peakD, peakGold: mean(peak, \.gold), proxyAfterPeak: dProxy,
            goldAfterPeak: dGold, goldNoise: noise, explanation: explanation)
    }
}

public struct PreferenceResult: Codable, Sendable, Equatable {
    public var loss: [CurvePoint]
    public var policy: PolicyEvaluation
}

public struct GRPOResult: Codable, Sendable, Equatable {
    public var points: [OptimisationPoint]
    public var policy: PolicyEvaluation
}

public struct DemoReport: Codable, Sendable, Equatable {
    public var config: DemoConfig
    public var model: String
    public var task: String
    public var baseline: BaselineResult?
    public var sft: SFTResult?
    public var pairs: PairsResult?
    public var reward: RewardResult?
    public var ppo: RLResult?
    public var bestOfN: BestOfNResult?
    public var dpo: PreferenceResult?
    public var grpo: GRPOResult?
    public var timings: [StageTiming] = []

    public init(config: DemoConfig, model: String, task: String) {
        self.config = config
        self.model = model
        self.task = task
    }

    /// The closing lines printed on the terminal.
    public var summary: [String] {
        var lines: [String] = []
        func f(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "–" }
        if let b = baseline, let s = sft {
            lines.append(
                "gold reward on the eval prompts, greedy (sampled): base \(f(b.base.meanGold)) "
                    + "(\(f(b.base.sampled?.meanGold))) → SFT \(f(s.policy.meanGold)) (\(f(s.policy.sampled?.meanGold)))"
            )
        }
        if let r = reward {
            lines.append(
                "reward model accuracy vs gold: held-out sums \(f(r.heldOutAccuracy)), differences (another kind) "
                    + "\(f(r.oodAccuracy)); length correlation proxy \(f(r.proxyLengthCorrelation)) vs gold "
                    + "\(f(r.goldLengthCorrelation))")
        }
        for (name, e) in [
            ("PPO", ppo?.policy), ("best-of-\(config.bonMaxN)", bestOfN?.policy), ("DPO", dpo?.policy),
            ("GRPO", grpo?.policy),
        ] {
            guard let e else { continue }
            var line = "\(name): gold \(f(e.meanGold)), win-rate vs \(e.opponent ?? "–") \(f(e.winRate))"
            if let s = e.sampled {
                line += "; sampled: gold \(f(s.meanGold)) ± \(f(s.goldStdErr)), win-rate \(f(s.winRate))"
            }
            lines.append(line)
        }
        if let p = ppo, let first = p.points.first, let last = p.points.last {
            lines.append(
                String(
                    format: "PPO: final KL %.3f nats; rollout length %.1f → %.1f words (the gold judge charges beyond "
                        + "%d); over-optimisation: %@", last.kl, first.words, last.words, GoldJudge.targetWords,
                    p.overOptimisation.explanation))
            if let best = p.heldOut.dropFirst().max(by: { $0.gold < $1.gold }), let sft = p.heldOut.first,
                let last = p.heldOut.last
            {
                func gain(_ q: OptimisationPoint) -> String {
                    String(format: "%+.3f", q.gold - sft.gold)
                        + (q.gainStdErr.map { String(format: " ± %.3f", $0) } ?? "")
                }
                lines.append(
                    String(
                        format: "PPO held-out (sampled): gold %.3f (SFT, d = 0) → best %.3f (%@ paired SE) at d ≈ %.2f "
                            + "(win-rate vs SFT %@) → %.3f (%@) at d ≈ %.2f (final)", sft.gold, best.gold, gain(best),
                        best.d, best.winRate.map { String(format: "%.3f", $0) } ?? "–", last.gold, gain(last), last.d))
            }
        }
        if let b = bestOfN { lines.append("best-of-n: \(b.overOptimisation.explanation)") }
        return lines
    }
}

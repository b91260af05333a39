// The RL fine-tuning math as pure functions over ragged rows (one array per sequence, its completion tokens
// only — padding never enters): KL estimators, per-token reward shaping, GAE, whitening, the PPO clipped
// policy and value losses, the adaptive KL controller, and the critic-free group advantages (GRPO, RLOO) with
// their clipped token losses. Formulas and test vectors: ../shared/anchors/papers.md, rlhf_losses_golden.json.

import Foundation

/// Schulman's estimators of KL(π ‖ π_ref) from tokens sampled from π, with r = log π_ref − log π:
/// k1 = −r, k2 = r²/2, k3 = e^r − 1 − r (unbiased and ≥ 0; GRPO's per-token KL).
public enum KLEstimator: String, Codable, Sendable, CaseIterable {
    case k1, k2, k3

    public func value(policy: Double, reference: Double) -> Double {
        let r = reference - policy
        switch self {
        case .k1: return -r
        case .k2: return 0.5 * r * r
        case .k3: return exp(r) - 1 - r
        }
    }

    /// ∂/∂log π of `value` (∂r/∂log π = −1).
    public func derivative(policy: Double, reference: Double) -> Double {
        let r = reference - policy
        switch self {
        case .k1: return 1
        case .k2: return -r
        case .k3: return 1 - exp(r)
        }
    }
}

public enum RLMath {
    /// Per-token rewards (Ziegler et al. 2019 eq. 2; Ouyang et al. 2022 eq. 2): −β·KL_t at every completion token,
    /// plus the sequence's score at its last token.
    public static func tokenRewards(
        policy: [[Double]], reference: [[Double]], scores: [Double], klCoefficient beta: Double,
        estimator: KLEstimator = .k1
    ) -> [[Double]] {
        zip(zip(policy, reference), scores).map { rows, score in
            var r = zip(rows.0, rows.1).map { -beta * estimator.value(policy: $0, reference: $1) }
            if !r.isEmpty { r[r.count - 1] += score }
            return r
        }
    }

    /// Mean per-token KL estimate over every completion token.
    public static func meanKL(policy: [[Double]], reference: [[Double]], estimator: KLEstimator = .k3) -> Double {
        var sum = 0.0, count = 0.0
        for (p, r) in zip(policy, reference) {
            for (x, y) in zip(p, r) {
                sum += estimator.value(policy: x, reference: y)
                count += 1
            }
        }
        return count > 0 ? sum / count : 0
    }

    /// Generalised advantage estimation (Schulman et al. 2016 eq. 16): δ_t = r_t + γV_{t+1} − V_t with V_T = 0,
    /// A_t = δ_t + γλA_{t+1}; returns R_t = A_t + V_t.
    public static func gae(rewards: [[Double]], values: [[Double]], gamma: Double = 1, lambda: Double = 0.95)
        -> (advantages: [[Double]], returns: [[Double]])
    {
        var advantages: [[Double]] = [], returns: [[Double]] = []
        for (r, v) in zip(rewards, values) {
            var a = [Double](repeating: 0, count: r.count)
            var next = 0.0, nextValue = 0.0
            for t in stride(from: r.count - 1, through: 0, by: -1) {
                let delta = r[t] + gamma * nextValue - v[t]
                next = delta + gamma * lambda * next
                a[t] = next
                nextValue = v[t]
            }
            advantages.append(a)
            returns.append(zip(a, v).map(+))
        }
        return (advantages, returns)
    }

    /// (x − mean)/√(var + 1e-8) over every token of the batch, var unbiased (TRL's `masked_whiten`); with
    /// `shiftMean` false the mean is added back (reward whitening keeps the mean).
    public static func whiten(_ x: [[Double]], shiftMean: Bool = true) -> [[Double]] {
        let flat = x.flatMap { $0 }
        let n = Double(flat.count)
        guard n > 1 else { return x }
        let mean = flat.reduce(0, +) / n
        let variance = flat.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        let scale = 1 / (variance + 1e-8).squareRoot()
        return x.map { row in row.map { shiftMean ? ($0 - mean) * scale : ($0 - mean) * scale + mean } }
    }

    /// GRPO (Shao et al. 2024 eq. 3's Â, TRL's `scale_rewards="group"`): (r − mean_group)/(std_group + 1e-4), std
    /// unbiased; with `scale` false (Dr. GRPO) only the mean is subtracted.
    public static func grpoAdvantages(_ groups: [[Double]], scale: Bool = true) -> [[Double]] {
        groups.map { g in
            let k = Double(g.count), mean = g.reduce(0, +) / k
            let std = k > 1 ? (g.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (k - 1)).squareRoot() : 0
            return g.map { scale ? ($0 - mean) / (std + 1e-4) : $0 - mean }
        }
    }

    /// RLOO (Ahmadian et al. 2024 eq. 5): r_i − mean of the other k − 1 rewards of the group.
    public static func rlooAdvantages(_ groups: [[Double]]) -> [[Double]] {
        groups.map { g in
            let sum = g.reduce(0, +), k = Double(g.count)
            return g.map { k > 1 ? $0 - (sum - $0) / (k - 1) : 0 }
        }
    }
}

/// Ziegler et al. 2019 §2.2's adaptive KL coefficient: e = clip(KL/target − 1, −0.2, 0.2),
/// β ← β·(1 + e·n_steps/horizon).
public struct AdaptiveKLController: Codable, Sendable, Equatable {
    public var coefficient: Double
    public var target: Double
    public var horizon: Double

    public init(initial: Double, target: Double, horizon: Double) {
        coefficient = initial
        self.target = target
        self.horizon = horizon
    }

    public mutating func update(currentKL: Double, steps: Int) {
        let error = min(max(currentKL / target - 1, -0.2), 0.2)
        coefficient *= 1 + error * Double(steps) / horizon
    }
}

/// PPO's clipped surrogate and clipped value loss (Schulman et al. 2017 eq. 7; value clipping as in OpenAI's
/// baselines and TRL's former PPOTrainer), each a mean over every completion token of the batch:
///   L^CLIP = mean max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε)), ρ = exp(log π − log π_old)
///   L^VF = ½ mean max((V − R)², (clip(V, V_old − ε_v, V_old + ε_v) − R)²),  L = L^CLIP + c_v·L^VF.
public enum PPOLoss {
    public struct Result: Sendable {
        public var loss: Double, policyLoss: Double, valueLoss: Double
        /// ∂L/∂log π and ∂L/∂V per token.
        public var dLogProbs: [[Double]], dValues: [[Double]]
        /// Fractions of tokens where the clipped branch was taken, and ½ mean (log π − log π_old)².
        public var policyClipFraction: Double, valueClipFraction: Double, approxKL: Double
    }

    public static func evaluate(
        logProbs: [[Double]], oldLogProbs: [[Double]], advantages: [[Double]], values: [[Double]]? = nil,
        oldValues: [[Double]]? = nil, returns: [[Double]]? = nil, clipRange eps: Double = 0.2,
        valueClipRange epsV: Double = 0.2, valueCoefficient: Double = 0.1
    ) -> Result {
        var r = policy(logProbs: logProbs, oldLogProbs: oldLogProbs, advantages: advantages, clipRange: eps)
        if let values, let oldValues, let returns {
            let v = value(
                values: values, oldValues: oldValues, returns: returns, clipRange: epsV,
                coefficient: valueCoefficient)
            (r.valueLoss, r.dValues, r.valueClipFraction) = (v.valueLoss, v.dValues, v.valueClipFraction)
        }
        r.loss = r.policyLoss + valueCoefficient * r.valueLoss
        return r
    }

    /// The policy half: L^CLIP, ∂L^CLIP/∂log π, clip fraction and approx-KL (mean over the tokens given).
    public static func policy(
        logProbs: [[Double]], oldLogProbs: [[Double]], advantages: [[Double]], clipRange eps: Double = 0.2
    ) -> Result {
        let n = Double(logProbs.reduce(0) { $0 + $1.count })
        precondition(n > 0, "no completion token")
        var r = Result(
            loss: 0, policyLoss: 0, valueLoss: 0, dLogProbs: [], dValues: [], policyClipFraction: 0,
            valueClipFraction: 0, approxKL: 0)
        for s in logProbs.indices {
            var dRow: [Double] = []
            for t in logProbs[s].indices {
                let d = logProbs[s][t] - oldLogProbs[s][t], ratio = exp(d), a = advantages[s][t]
                let clipped = min(max(ratio, 1 - eps), 1 + eps)
                let pg1 = -a * ratio, pg2 = -a * clipped
                r.policyLoss += max(pg1, pg2) / n
                // The unclipped branch (or a tie) carries −A·ρ; the clipped one is constant outside the range.
                dRow.append(pg1 >= pg2 ? -a * ratio / n : 0)
                if pg2 > pg1 { r.policyClipFraction += 1 / n }
                r.approxKL += 0.5 * d * d / n
            }
            r.dLogProbs.append(dRow)
        }
        r.loss = r.policyLoss
        return r
    }

    /// The value half: L^VF (unweighted), ∂(c_v·L^VF)/∂V and the value clip fraction (mean over the tokens given).
    public static func value(
        values: [[Double]], oldValues: [[Double]], returns: [[Double]], clipRange epsV: Double = 0.2,
        coefficient: Double = 0.1
    ) -> Result {
        let n = Double(values.reduce(0) { $0 + $1.count })
        precondition(n > 0, "no completion token")
        var r = Result(
            loss: 0, policyLoss: 0, valueLoss: 0, dLogProbs: [], dValues: [], policyClipFraction: 0,
            valueClipFraction: 0, approxKL: 0)
        for s in values.indices {
            var dRow: [Double] = []
            for t in values[s].indices {
                let v = values[s][t], vOld = oldValues[s][t], ret = returns[s][t]
                let vc = min(max(v, vOld - epsV), vOld + epsV)
                let u = (v - ret) * (v - ret), c = (vc - ret) * (vc - ret)
                r.valueLoss += 0.5 * max(u, c) / n
                if c > u {
                    r.valueClipFraction += 1 / n
                    dRow.append(abs(v - vOld) < epsV ? coefficient * (vc - ret) / n : 0)
                } else {
                    dRow.append(coefficient * (v - ret) / n)
                }
            }
            r.dValues.append(dRow)
        }
        r.loss = coefficient * r.valueLoss
        return r
    }
}

/// GRPO's token loss (Shao et al. 2024 eq. 3, TRL's GRPOTrainer): per token max(−Â·ρ, −Â·clip(ρ, 1−ε_low, 1+ε_high))
/// + β·k3(π, π_ref), aggregated by `Aggregation`.
public enum GRPOLoss {
    public enum Aggregation: String, Codable, Sendable, CaseIterable {
        /// Mean over each sequence's tokens, then over sequences (the paper's 1/|o_i|).
        case grpo
        /// Σ over all tokens / all tokens of the batch (DAPO, Yu et al. 2025 eq. 8; TRL's default `dapo`).
        case dapo
        /// Σ over all tokens / (sequences × max completion length) (Dr. GRPO, Liu et al. 2025).
        case drGRPO = "dr_grpo"
    }

    public struct Result: Sendable {
        public var loss: Double
        public var dLogProbs: [[Double]]
        /// Mean k3 KL per token, fraction of clipped tokens.
        public var kl: Double, clipFraction: Double
    }

    public static func evaluate(
        logProbs: [[Double]], oldLogProbs: [[Double]], referenceLogProbs: [[Double]]?, advantages: [Double],
        beta: Double, epsilonLow: Double = 0.2, epsilonHigh: Double = 0.2, aggregation: Aggregation = .dapo,
        maxCompletionLength: Int = 0
    ) -> Result {
        let tokens = Double(logProbs.reduce(0) { $0 + $1.count })
        precondition(tokens > 0, "no completion token")
        var r = Result(loss: 0, dLogProbs: [], kl: 0, clipFraction: 0)
        let sequences = Double(logProbs.count)
        for s in logProbs.indices {
            let weight: Double =
                switch aggregation {
                case .grpo: 1 / (sequences * Double(max(1, logProbs[s].count)))
                case .dapo: 1 / tokens
                case .drGRPO: 1 / (sequences * Double(max(1, maxCompletionLength)))
                }
            var dRow: [Double] = []
            let a = advantages[s]
            for t in logProbs[s].indices {
                let ratio = exp(logProbs[s][t] - oldLogProbs[s][t])
                let clipped = min(max(ratio, 1 - epsilonLow), 1 + epsilonHigh)
                let pg1 = -a * ratio, pg2 = -a * clipped
                var loss = max(pg1, pg2), d = pg1 >= pg2 ? -a * ratio : 0
                if pg2 > pg1 { r.clipFraction += 1 / tokens }
                if let ref = referenceLogProbs, beta != 0 {
                    let k = KLEstimator.k3
                    loss += beta * k.value(policy: logProbs[s][t], reference: ref[s][t])
                    d += beta * k.derivative(policy: logProbs[s][t], reference: ref[s][t])
                    r.kl += k.value(policy: logProbs[s][t], reference: ref[s][t]) / tokens
                }
                r.loss += weight * loss
                dRow.append(weight * d)
            }
            r.dLogProbs.append(dRow)
        }
        return r
    }
}

// Pairwise preference losses as pure functions of per-pair scalars: each returns the batch-mean loss,
// its gradient with respect to every input scalar, and TRL's metrics. Numerically stable log σ(x) =
// −softplus(−x). Formulas and test vectors: ../shared/anchors/papers.md, rlhf_losses_golden.json.

import Foundation

/// log σ(x) without overflow.
@inline(__always) func logSigmoid(_ x: Double) -> Double { x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)) }
@inline(__always) func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }

/// Bradley–Terry reward-model loss (Christiano et al. 2017; Ouyang et al. 2022 eq. 1; Llama 2's margin,
/// Touvron et al. 2023 eq. 2; reward centering, Eisenstein et al. 2023):
///   ℓ_i = −(1−ε) log σ(r_c − r_r − m_i) − ε log σ(−(r_c − r_r − m_i)) + c·(r_c + r_r)²,  L = mean_i ℓ_i
/// (ε = label smoothing for noisy annotators; 0 in TRL's default). K-wise comparisons (Ouyang et al. 2022 eq. 1):
/// a group of K responses to one prompt contributes the mean of ℓ over its C(K,2) (better, worse) pairs, each
/// response scored once; L = mean over groups (a pair is a group of 2).
public enum RewardLoss {
    public struct Result: Sendable {
        public var loss: Double
        /// ∂L/∂r of every response (`evaluate(rewards:groups:…)`).
        public var dRewards: [Double]
        /// ∂L/∂r_c and ∂L/∂r_r per pair (`evaluate(chosen:rejected:…)`).
        public var dChosen: [Double], dRejected: [Double]
        /// Fraction of (better, worse) pairs with r_better > r_worse and mean of r_better − r_worse, both weighted as
        /// in the loss (per pair for pairwise data; each group's pairs share its weight), and the mean reward.
        public var accuracy: Double, margin: Double, meanReward: Double
        /// (better, worse) pairs compared.
        public var pairs: Int
    }

    /// One group: response indices into `rewards`, best first, and its margin (pairs only).
    public struct Group: Sendable {
        public var ranked: [Int]
        public var margin: Double
        public init(ranked: [Int], margin: Double = 0) {
            self.ranked = ranked
            self.margin = margin
        }
    }

    /// The loss over `groups` of the responses whose scores are `rewards`.
    public static func evaluate(
        rewards: [Double], groups: [Group], centerCoefficient: Double = 0, labelSmoothing eps: Double = 0
    ) -> Result {
        precondition(!groups.isEmpty && groups.allSatisfy { $0.ranked.count >= 2 }, "groups of two or more")
        var r = Result(
            loss: 0, dRewards: [Double](repeating: 0, count: rewards.count), dChosen: [], dRejected: [],
            accuracy: 0, margin: 0, meanReward: 0, pairs: 0)
        var responses = 0
        for group in groups {
            let k = group.ranked.count, pairs = Double(k * (k - 1) / 2)
            let w = 1 / (Double(groups.count) * pairs)  // mean over pairs, then over groups
            var correct = 0, margin = 0.0
            for a in 0..<k {
                r.meanReward += rewards[group.ranked[a]]
                for b in (a + 1)..<k {
                    let i = group.ranked[a], j = group.ranked[b]
                    let d = rewards[i] - rewards[j] - (k == 2 ? group.margin : 0)
                    r.loss += w * (-(1 - eps) * logSigmoid(d) - eps * logSigmoid(-d))
                    let g = w * (sigmoid(d) - (1 - eps))  // ∂ℓ/∂d = σ(d) − (1 − ε)
                    let sum = rewards[i] + rewards[j]
                    r.loss += w * centerCoefficient * sum * sum
                    let gc = w * 2 * centerCoefficient * sum
                    r.dRewards[i] += g + gc
                    r.dRewards[j] += -g + gc
                    if rewards[i] > rewards[j] { correct += 1 }
                    margin += rewards[i] - rewards[j]
                    r.pairs += 1
                }
            }
            // Counts per group, divided once: an all-correct batch has accuracy exactly 1.
            r.accuracy += Double(correct) / pairs
            r.margin += margin / pairs
            responses += k
        }
        r.accuracy /= Double(groups.count)
        r.margin /= Double(groups.count)
        r.meanReward /= Double(responses)
        return r
    }

    /// Pairs: `chosen[i]` against `rejected[i]`, with optional margins.
    public static func evaluate(
        chosen: [Double], rejected: [Double], margins: [Double]? = nil,
        centerCoefficient: Double = 0, labelSmoothing: Double = 0
    ) -> Result {
        precondition(chosen.count == rejected.count && !chosen.isEmpty, "one rejected reward per chosen one")
        let n = chosen.count
        var r = evaluate(
            rewards: chosen + rejected,
            groups: (0..<n).map { Group(ranked: [$0, n + $0], margin: margins?[$0] ?? 0) },
            centerCoefficient: centerCoefficient, labelSmoothing: labelSmoothing)
        r.dChosen = Array(r.dRewards[..<n])
        r.dRejected = Array(r.dRewards[n...])
        return r
    }
}

/// The DPO family on sequence log-probs of chosen (c) and rejected (r) completions under the policy (π)
/// and the reference (ref): h = (log π_c − log ref_c) − (log π_r − log ref_r), per pair, L = mean.
public enum DPOLoss {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Rafailov et al. 2023 eq. 7: −log σ(βh); with label smoothing ε, conservative DPO (cDPO):
        /// −(1−ε) log σ(βh) − ε log σ(−βh).
        case sigmoid
        /// Robust DPO (Chowdhury et al. 2024 eq. 8): [−(1−ε) log σ(βh) + ε log σ(−βh)] / (1 − 2ε).
        case robust
        /// IPO (Azar et al. 2023 eq. 17), TRL's length-normalised form: (h̄ − 1/(2β))², h̄ with each log-ratio
        /// divided by its completion's token count.
        case ipo
        /// SLiC hinge (Zhao et al. 2023): max(0, 1 − βh).
        case hinge
        /// SimPO (Meng et al. 2024 eq. 6), reference-free: −log σ(β(log π_c/|c| − log π_r/|r|) − γ).
        case simpo
        /// ORPO (Hong et al. 2024 eqs. 4–6), reference-free: NLL of the chosen tokens (mean over the batch's chosen
        /// tokens) − β·mean log σ(log odds(ā_c) − log odds(ā_r)), ā = log π/|y|, odds(ā) = e^ā / (1 − e^ā).
        case orpo

        /// Whether the loss compares against reference log-probs (SimPO and ORPO do not).
        public var usesReference: Bool { self != .simpo && self != .orpo }

        /// The kind a name stands for: the case names, plus `dpo` (= sigmoid) and `cdpo` (= sigmoid with label
        /// smoothing, which the caller must set).
        public init?(name: String) {
            switch name {
            case "dpo", "cdpo": self = .sigmoid
            default: self.init(rawValue: name)
            }
        }
    }

    public struct Inputs: Sendable {
        public var policyChosen: [Double], policyRejected: [Double]
        /// Reference log-probs (unused by SimPO; pass zeros).
        public var referenceChosen: [Double], referenceRejected: [Double]
        /// Completion token counts (IPO's and SimPO's length normalisation).
        public var chosenLengths: [Double], rejectedLengths: [Double]

        public init(
            policyChosen: [Double], policyRejected: [Double], referenceChosen: [Double], referenceRejected: [Double],
            chosenLengths: [Double], rejectedLengths: [Double]
        ) {
            self.policyChosen = policyChosen
            self.policyRejected = policyRejected
            self.referenceChosen = referenceChosen
            self.referenceRejected = referenceRejected
            self.chosenLengths = chosenLengths
            self.rejectedLengths = rejectedLengths
        }
    }

    public struct Result: Sendable {
        public var loss: Double
        public var perPair: [Double]
        /// ∂L/∂log π_c and ∂L/∂log π_r per pair.
        public var dPolicyChosen: [Double], dPolicyRejected: [Double]
        /// TRL's implicit rewards β(log π − log ref) (SimPO, ORPO: β·log π/|y|) and their metrics.
        public var chosenRewards: [Double], rejectedRewards: [Double]
        /// Loss-specific metrics in TRL's names (ORPO: `nll_loss`, `log_odds_ratio`, `log_odds_chosen`).
        public var lossMetrics: [String: Double] = [:]

        /// `rewards/chosen`, `rewards/rejected`, `rewards/accuracies`, `rewards/margins`.
        public var metrics: [String: Double] {
            let n = Double(chosenRewards.count)
            let margins = zip(chosenRewards, rejectedRewards).map { $0 - $1 }
            return [
                "rewards/chosen": chosenRewards.reduce(0, +) / n, "rewards/rejected": rejectedRewards.reduce(0, +) / n,
                "rewards/accuracies": Double(margins.filter { $0 > 0 }.count) / n,
                "rewards/margins": margins.reduce(0, +) / n,
            ].merging(lossMetrics) { a, _ in a }
        }
    }

    /// `labelSmoothing` ε (sigmoid: cDPO; robust), `simpoGamma` γ (SimPO's target margin; TRL default 0.5).
    public static func evaluate(
        _ kind: Kind, _ x: Inputs, beta: Double, labelSmoothing eps: Double = 0,
        simpoGamma: Double = 0.5
    ) -> Result {
        let n = x.policyChosen.count
        precondition(
            n > 0
                && [
                    x.policyRejected.count, x.referenceChosen.count, x.referenceRejected.count,
                    x.chosenLengths.count, x.rejectedLengths.count,
                ].allSatisfy { $0 == n }, "one value per pair")
        var r = Result(
            loss: 0, perPair: [], dPolicyChosen: [], dPolicyRejected: [], chosenRewards: [], rejectedRewards: [])
        if kind == .orpo { return orpo(x, beta: beta) }
        for i in 0..<n {
            let rc = x.policyChosen[i] - x.referenceChosen[i], rr = x.policyRejected[i] - x.referenceRejected[i]
            let h = rc - rr
            var loss: Double, dh: Double  // dh = ∂ℓ/∂h; then ∂h/∂log π_c = s_c, ∂h/∂log π_r = −s_r
            var sc = 1.0, sr = 1.0
            switch kind {
            case .sigmoid:
                loss = -(1 - eps) * logSigmoid(beta * h) - eps * logSigmoid(-beta * h)
                dh = beta * (sigmoid(beta * h) - (1 - eps))
            case .robust:
                loss = (-(1 - eps) * logSigmoid(beta * h) + eps * logSigmoid(-beta * h)) / (1 - 2 * eps)
                // d/dh: [−(1−ε)β(1−σ) − εβσ] / (1−2ε)
                let s = sigmoid(beta * h)
                dh = beta * (-(1 - eps) * (1 - s) - eps * s) / (1 - 2 * eps)
            case .ipo:
                sc = 1 / x.chosenLengths[i]
                sr = 1 / x.rejectedLengths[i]
                let d = rc * sc - rr * sr - 1 / (2 * beta)
                loss = d * d
                dh = 2 * d
            case .hinge:
                loss = max(0, 1 - beta * h)
                dh = beta * h < 1 ? -beta : 0
            case .simpo:
                sc = 1 / x.chosenLengths[i]
                sr = 1 / x.rejectedLengths[i]
                let z = beta * (x.policyChosen[i] * sc - x.policyRejected[i] * sr) - simpoGamma
                loss = -(1 - eps) * logSigmoid(z) - eps * logSigmoid(-z)
                dh = beta * (sigmoid(z) - (1 - eps))
            case .orpo:
                preconditionFailure("handled by orpo(_:beta:)")
            }
            r.perPair.append(loss)
            r.loss += loss / Double(n)
            r.dPolicyChosen.append(dh * sc / Double(n))
            r.dPolicyRejected.append(-dh * sr / Double(n))
            if kind == .simpo {
                r.chosenRewards.append(beta * x.policyChosen[i] * sc)
                r.rejectedRewards.append(beta * x.policyRejected[i] * sr)
            } else {
                r.chosenRewards.append(beta * rc)
                r.rejectedRewards.append(beta * rr)
            }
        }
        return r
    }

    /// ORPO (Hong et al. 2024): L = −Σ_i log π_c,i / Σ_i |c_i| − (β/n) Σ_i log σ(z_i) with
    /// z = lo(ā_c) − lo(ā_r), lo(ā) = ā − log(1 − e^ā) (eq. 4's log odds), ā = log π/|y|; lo′(ā) = 1/(1 − e^ā).
    static func orpo(_ x: Inputs, beta: Double) -> Result {
        let n = Double(x.policyChosen.count), chosenTokens = x.chosenLengths.reduce(0, +)
        var r = Result(
            loss: 0, perPair: [], dPolicyChosen: [], dPolicyRejected: [], chosenRewards: [], rejectedRewards: [])
        // ā < 0 strictly (a probability of exactly 1 has infinite odds).
        func mean(_ sum: Double, _ length: Double) -> Double { min(sum / length, -1e-9) }
        func logOdds(_ a: Double) -> Double { a - log(-expm1(a)) }
        var nll = 0.0, ratio = 0.0, logOddsSum = 0.0
        for i in x.policyChosen.indices {
            let ac = mean(x.policyChosen[i], x.chosenLengths[i]), ar = mean(x.policyRejected[i], x.rejectedLengths[i])
            let z = logOdds(ac) - logOdds(ar)
            let pairNLL = -x.policyChosen[i] / chosenTokens
            let pairLoss = pairNLL - beta * logSigmoid(z) / n
            nll += pairNLL
            ratio += logSigmoid(z) / n
            logOddsSum += z / n
            r.perPair.append(-x.policyChosen[i] / x.chosenLengths[i] - beta * logSigmoid(z))
            r.loss += pairLoss
            let dz = -beta * (1 - sigmoid(z)) / n  // ∂L/∂z_i
            r.dPolicyChosen.append(dz / (-expm1(ac)) / x.chosenLengths[i] - 1 / chosenTokens)
            r.dPolicyRejected.append(-dz / (-expm1(ar)) / x.rejectedLengths[i])
            r.chosenRewards.append(beta * ac)
            r.rejectedRewards.append(beta * ar)
        }
        r.lossMetrics = ["nll_loss": nll, "log_odds_ratio": ratio, "log_odds_chosen": logOddsSum]
        return r
    }
}

/// KTO (Ethayarajh et al. 2024 eq. 8, as TRL's KTOTrainer computes it) on unpaired completions: with the log-ratio
/// r = log π(y|x) − log π_ref(y|x) and the detached reference point z₀ (`referencePoint`), a desirable completion
/// costs λ_D(1 − σ(β(r − z₀))) and an undesirable one λ_U(1 − σ(β(z₀ − r))); L = mean over the batch.
public enum KTOLoss {
    public struct Result: Sendable {
        public var loss: Double
        /// ∂L/∂log π per completion (z₀ is detached).
        public var dPolicy: [Double]
        /// `rewards/chosen`, `rewards/rejected` (β r means over desirable / undesirable completions; absent when
        /// the batch has none), `rewards/margins` (when both), `kl` (z₀).
        public var metrics: [String: Double]
    }

    /// z₀ = max(0, mean of log π(y′|x) − log π_ref(y′|x)) over mismatched prompt/completion pairs (eq. 7's KL
    /// estimate, clamped at 0 as in TRL).
    public static func referencePoint(policy: [Double], reference: [Double]) -> Double {
        precondition(policy.count == reference.count && !policy.isEmpty, "one reference log-prob per policy one")
        return max(0, zip(policy, reference).reduce(0) { $0 + $1.0 - $1.1 } / Double(policy.count))
    }

    public static func evaluate(
        policy: [Double], reference: [Double], desirable: [Bool], referencePoint z0: Double, beta: Double,
        desirableWeight: Double = 1, undesirableWeight: Double = 1
    ) -> Result {
        let n = policy.count
        precondition(n > 0 && reference.count == n && desirable.count == n, "one value per completion")
        var r = Result(loss: 0, dPolicy: [], metrics: ["kl": z0])
        var chosen: [Double] = [], rejected: [Double] = []
        for i in 0..<n {
            let ratio = policy[i] - reference[i]
            if desirable[i] {
                let s = sigmoid(beta * (ratio - z0))
                r.loss += desirableWeight * (1 - s) / Double(n)
                r.dPolicy.append(-desirableWeight * beta * s * (1 - s) / Double(n))
                chosen.append(beta * ratio)
            } else {
                let s = sigmoid(beta * (z0 - ratio))
                r.loss += undesirableWeight * (1 - s) / Double(n)
                r.dPolicy.append(undesirableWeight * beta * s * (1 - s) / Double(n))
                rejected.append(beta * ratio)
            }
        }
        if !chosen.isEmpty { r.metrics["rewards/chosen"] = chosen.reduce(0, +) / Double(chosen.count) }
        if !rejected.isEmpty { r.metrics["rewards/rejected"] = rejected.reduce(0, +) / Double(rejected.count) }
        if let c = r.metrics["rewards/chosen"], let u = r.metrics["rewards/rejected"] {
            r.metrics["rewards/margins"] = c - u
        }
        return r
    }
}

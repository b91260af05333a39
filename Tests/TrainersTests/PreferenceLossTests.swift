// Preference losses against TRL's formulas: the golden values of rlhf_losses_golden.json (when ../shared
// is there), finite-difference gradients of every kind, DPO = ln 2 when policy = reference, and swapping
// chosen with rejected flipping accuracy and negating margins.

import Foundation
import Testing
import _SharedData
import _TestSupport

@testable import Trainers

@Suite struct PreferenceLossTests {
    static let goldenURL = SharedData.url("reference/rlhf_losses_golden.json")
    static var golden: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(contentsOf: goldenURL))) as? [String: Any] ?? [:]
    }
    static func d(_ any: Any?) -> [Double] { (any as? [Any] ?? []).map { ($0 as! NSNumber).doubleValue } }
    static func v(_ any: Any?) -> Double { (any as! NSNumber).doubleValue }
    static func close(_ a: Double, _ b: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(abs(a - b) <= 1e-6 * max(1, abs(b)), "\(what): \(a) vs \(b)", sourceLocation: sourceLocation)
    }

    @Test(SharedData.needs("reference/rlhf_losses_golden.json"))
    func rewardLossMatchesGolden() {
        let g = Self.golden["bradley_terry_reward_loss"] as! [String: Any], x = g["inputs"] as! [String: Any]
        let c = Self.d(x["rewards_chosen"]), r = Self.d(x["rewards_rejected"]), m = Self.d(x["margin"])
        let plain = RewardLoss.evaluate(chosen: c, rejected: r)
        Self.close(plain.loss, Self.v(g["loss_no_margin"]), "loss")
        Self.close(plain.accuracy, Self.v(g["accuracy"]), "accuracy")
        for (a, b) in zip(plain.dChosen, Self.d(g["grad_wrt_rewards_chosen_no_margin"])) { Self.close(a, b, "∂L/∂r_c") }
        Self.close(
            RewardLoss.evaluate(chosen: c, rejected: r, margins: m).loss, Self.v(g["loss_with_margin"]), "margin")
        Self.close(
            RewardLoss.evaluate(chosen: c, rejected: r, centerCoefficient: Self.v(x["center_rewards_coefficient"]))
                .loss,
            Self.v(g["loss_no_margin_plus_centering"]), "centering")
    }

    static func dpoInputs(_ g: [String: Any], lengths: [String: Any]? = nil) -> DPOLoss.Inputs {
        let x = g["inputs"] as! [String: Any]
        let n = Self.d(x["policy_chosen_logps"]).count
        return DPOLoss.Inputs(
            policyChosen: Self.d(x["policy_chosen_logps"]), policyRejected: Self.d(x["policy_rejected_logps"]),
            referenceChosen: Self.d(x["reference_chosen_logps"]),
            referenceRejected: Self.d(x["reference_rejected_logps"]),
            chosenLengths: lengths.map { Self.d($0["n_chosen_tokens"]) } ?? [Double](repeating: 1, count: n),
            rejectedLengths: lengths.map { Self.d($0["n_rejected_tokens"]) } ?? [Double](repeating: 1, count: n))
    }

    @Test(SharedData.needs("reference/rlhf_losses_golden.json"))
    func dpoFamilyMatchesGolden() {
        let g = Self.golden["dpo"] as! [String: Any], beta = Self.v(g["beta"])
        let x = Self.dpoInputs(g)
        let r = DPOLoss.evaluate(.sigmoid, x, beta: beta)
        Self.close(r.loss, Self.v(g["loss_sigmoid"]), "DPO loss")
        for (a, b) in zip(r.perPair, Self.d(g["per_pair_loss_sigmoid"])) { Self.close(a, b, "per pair") }
        for (a, b) in zip(r.dPolicyChosen, Self.d(g["grad_wrt_policy_chosen_logps_sigmoid"])) {
            Self.close(a, b, "∂L/∂logπ_c")
        }
        for (a, b) in zip(r.chosenRewards, Self.d(g["chosen_rewards"])) { Self.close(a, b, "chosen reward") }
        for (a, b) in zip(r.rejectedRewards, Self.d(g["rejected_rewards"])) { Self.close(a, b, "rejected reward") }
        Self.close(r.metrics["rewards/accuracies"]!, Self.v(g["reward_accuracy"]), "accuracy")
        Self.close(r.metrics["rewards/margins"]!, Self.v(g["reward_margin_mean"]), "margin")
        Self.close(
            DPOLoss.evaluate(.sigmoid, x, beta: beta, labelSmoothing: Self.v(g["label_smoothing_variant"])).loss,
            Self.v(g["loss_sigmoid_label_smoothing_0.1"]), "cDPO")

        let ipo = Self.golden["ipo"] as! [String: Any]
        let xi = Self.dpoInputs(g, lengths: ipo["inputs"] as? [String: Any])
        let ri = DPOLoss.evaluate(.ipo, xi, beta: Self.v(ipo["beta"]))
        Self.close(ri.loss, Self.v(ipo["loss"]), "IPO")
        for (a, b) in zip(ri.perPair, Self.d(ipo["per_pair_loss"])) { Self.close(a, b, "IPO per pair") }
        Self.close(
            DPOLoss.evaluate(.ipo, x, beta: Self.v(ipo["beta"])).loss, Self.v(ipo["loss_unnormalised"]),
            "IPO unnormalised")
    }

    static let inputs = DPOLoss.Inputs(
        policyChosen: [-12.5, -30.25, -8, -45.5, -3], policyRejected: [-14, -29.75, -11.5, -44, -2.5],
        referenceChosen: [-13, -30, -9, -45, -3.2], referenceRejected: [-13.5, -30.5, -10, -44.5, -2],
        chosenLengths: [10, 25, 6, 40, 3], rejectedLengths: [12, 24, 9, 38, 2])

    @Test(arguments: DPOLoss.Kind.allCases)
    func gradientsMatchFiniteDifferences(kind: DPOLoss.Kind) {
        let eps = kind == .sigmoid || kind == .robust || kind == .simpo ? 0.1 : 0
        let beta = kind == .hinge ? 0.3 : 0.1
        let r = DPOLoss.evaluate(kind, Self.inputs, beta: beta, labelSmoothing: eps)
        let h = 1e-5
        for i in Self.inputs.policyChosen.indices {
            for chosen in [true, false] {
                var up = Self.inputs, down = Self.inputs
                if chosen {
                    up.policyChosen[i] += h; down.policyChosen[i] -= h
                } else {
                    up.policyRejected[i] += h; down.policyRejected[i] -= h
                }
                let numeric =
                    (DPOLoss.evaluate(kind, up, beta: beta, labelSmoothing: eps).loss
                        - DPOLoss.evaluate(kind, down, beta: beta, labelSmoothing: eps).loss) / (2 * h)
                let analytic = chosen ? r.dPolicyChosen[i] : r.dPolicyRejected[i]
                #expect(
                    abs(numeric - analytic) <= 1e-6 * max(1, abs(numeric)),
                    "\(kind) pair \(i) \(chosen ? "chosen" : "rejected")")
            }
        }
        let c = [1.25, -0.3, 0.8, 2.1], rj = [0.5, 0.4, -0.2, 2.6], m = [0.5, 0, 1, 0.25]
        let rm = RewardLoss.evaluate(chosen: c, rejected: rj, margins: m, centerCoefficient: 0.01, labelSmoothing: 0.1)
        for i in c.indices {
            var cu = c, cd = c
            cu[i] += h
            cd[i] -= h
            let numeric =
                (RewardLoss.evaluate(chosen: cu, rejected: rj, margins: m, centerCoefficient: 0.01, labelSmoothing: 0.1)
                    .loss
                    - RewardLoss.evaluate(
                        chosen: cd, rejected: rj, margins: m, centerCoefficient: 0.01, labelSmoothing: 0.1
                    ).loss) / (2 * h)
            #expect(abs(numeric - rm.dChosen[i]) <= 1e-7, "reward loss ∂/∂r_c[\(i)]")
        }
    }

    @Test func dpoIsLn2AtTheReferenceAndSwappingFlipsTheMetrics() {
        var x = Self.inputs
        x.referenceChosen = x.policyChosen
        x.referenceRejected = x.policyRejected
        #expect(abs(DPOLoss.evaluate(.sigmoid, x, beta: 0.1).loss - log(2)) <= 1e-15)
        let r = DPOLoss.evaluate(.sigmoid, Self.inputs, beta: 0.1)
        let swapped = DPOLoss.Inputs(
            policyChosen: Self.inputs.policyRejected, policyRejected: Self.inputs.policyChosen,
            referenceChosen: Self.inputs.referenceRejected, referenceRejected: Self.inputs.referenceChosen,
            chosenLengths: Self.inputs.rejectedLengths, rejectedLengths: Self.inputs.chosenLengths)
        let s = DPOLoss.evaluate(.sigmoid, swapped, beta: 0.1)
        #expect(abs(s.metrics["rewards/margins"]! + r.metrics["rewards/margins"]!) <= 1e-15)
        #expect(s.metrics["rewards/accuracies"]! + r.metrics["rewards/accuracies"]! == 1)  // no ties in these inputs
        let rm = RewardLoss.evaluate(chosen: [1, 2, -1], rejected: [0, 3, -2]),
            rs = RewardLoss.evaluate(chosen: [0, 3, -2], rejected: [1, 2, -1])
        #expect(abs(rm.accuracy + rs.accuracy - 1) <= 1e-15 && abs(rm.margin + rs.margin) <= 1e-15)
    }

    /// ORPO from probabilities and odds directly (Hong et al. 2024 eqs. 4–6), not through log-odds algebra.
    @Test func orpoMatchesOddsComputedFromProbabilities() {
        let x = DPOLoss.Inputs(
            policyChosen: [-6.0, -20.0], policyRejected: [-9.0, -18.0], referenceChosen: [0, 0],
            referenceRejected: [0, 0], chosenLengths: [4, 10], rejectedLengths: [6, 8])
        let beta = 0.25
        var expected = 0.0
        for i in 0..<2 {
            let pc = exp(x.policyChosen[i] / x.chosenLengths[i]), pr = exp(x.policyRejected[i] / x.rejectedLengths[i])
            let oddsRatio = (pc / (1 - pc)) / (pr / (1 - pr))
            expected += -beta * log(oddsRatio / (1 + oddsRatio)) / 2  // −β log σ(log OR), averaged over pairs
        }
        expected += (6.0 + 20.0) / 14.0  // chosen NLL: Σ −log π_c over the batch's 14 chosen tokens
        let r = DPOLoss.evaluate(.orpo, x, beta: beta)
        #expect(abs(r.loss - expected) <= 1e-12 * expected)
        #expect(abs(r.metrics["nll_loss"]! - 26.0 / 14.0) <= 1e-12)
        #expect(r.chosenRewards == [beta * -1.5, beta * -2.0])
    }

    /// A K-wise group (Ouyang et al. 2022 eq. 1) is the mean of its C(K,2) pairwise losses; groups are averaged.
    @Test func kWiseGroupsAreTheMeanOfTheirPairs() {
        let rewards = [0.3, -1.2, 2.0, 0.7, 1.1, -0.4]
        // Group 1: responses 0…3 ranked 2 > 0 > 3 > 1; group 2: the pair 4 > 5 with margin 0.5.
        let groups = [RewardLoss.Group(ranked: [2, 0, 3, 1]), RewardLoss.Group(ranked: [4, 5], margin: 0.5)]
        let r = RewardLoss.evaluate(rewards: rewards, groups: groups, centerCoefficient: 0.01, labelSmoothing: 0.1)
        let k4 = [(2, 0), (2, 3), (2, 1), (0, 3), (0, 1), (3, 1)]
        let pairwise = RewardLoss.evaluate(
            chosen: k4.map { rewards[$0.0] }, rejected: k4.map { rewards[$0.1] }, centerCoefficient: 0.01,
            labelSmoothing: 0.1)
        let pair = RewardLoss.evaluate(
            chosen: [rewards[4]], rejected: [rewards[5]], margins: [0.5], centerCoefficient: 0.01,
            labelSmoothing: 0.1)
        #expect(abs(r.loss - (pairwise.loss + pair.loss) / 2) <= 1e-15)
        #expect(r.pairs == 7)
        let h = 1e-6
        for i in rewards.indices {
            var up = rewards, down = rewards
            up[i] += h
            down[i] -= h
            let numeric =
                (RewardLoss.evaluate(rewards: up, groups: groups, centerCoefficient: 0.01, labelSmoothing: 0.1).loss
                    - RewardLoss.evaluate(
                        rewards: down, groups: groups, centerCoefficient: 0.01, labelSmoothing: 0.1
                    ).loss) / (2 * h)
            #expect(abs(numeric - r.dRewards[i]) <= 1e-8, "∂L/∂r[\(i)]")
        }
    }

    /// KTO (Ethayarajh et al. 2024 eq. 8): values from the formula written out, z₀ clamped at 0, gradients by finite
    /// differences (z₀ held fixed: it is detached).
    @Test func ktoMatchesItsFormulaAndFiniteDifferences() {
        let policy = [-10.0, -20.0, -7.5, -30.0], reference = [-10.5, -19.0, -7.0, -30.25]
        let desirable = [true, false, true, false]
        #expect(KTOLoss.referencePoint(policy: [-5, -6], reference: [-4, -4]) == 0)  // mean −1.5 clamps to 0
        let z = KTOLoss.referencePoint(policy: [-3, -3.5], reference: [-4, -4])
        #expect(abs(z - 0.75) <= 1e-15)
        let beta = 0.1, wd = 1.0, wu = 1.33
        let r = KTOLoss.evaluate(
            policy: policy, reference: reference, desirable: desirable, referencePoint: z, beta: beta,
            desirableWeight: wd, undesirableWeight: wu)
        var expected = 0.0
        for i in 0..<4 {
            let ratio = policy[i] - reference[i]
            expected +=
                desirable[i]
                ? wd * (1 - 1 / (1 + exp(-beta * (ratio - z)))) : wu * (1 - 1 / (1 + exp(-beta * (z - ratio))))
        }
        #expect(abs(r.loss - expected / 4) <= 1e-15)
        #expect(abs(r.metrics["rewards/chosen"]! - beta * (0.5 - 0.5) / 2) <= 1e-15)
        #expect(abs(r.metrics["rewards/rejected"]! - beta * (-1.0 + 0.25) / 2) <= 1e-15)
        let h = 1e-6
        for i in 0..<4 {
            var up = policy, down = policy
            up[i] += h
            down[i] -= h
            func loss(_ p: [Double]) -> Double {
                KTOLoss.evaluate(
                    policy: p, reference: reference, desirable: desirable, referencePoint: z, beta: beta,
                    desirableWeight: wd, undesirableWeight: wu
                ).loss
            }
            #expect(abs((loss(up) - loss(down)) / (2 * h) - r.dPolicy[i]) <= 1e-9, "∂L/∂log π[\(i)]")
        }
    }
}

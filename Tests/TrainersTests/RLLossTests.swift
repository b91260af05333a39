// The RL math against TRL/PyTorch test vectors (rlhf_losses_golden.json, ≤ 1e-6 relative): per-token rewards,
// KL estimators, GAE and whitening, the PPO clipped losses and their statistics, the adaptive KL controller,
// GRPO and RLOO advantages; the gradients of the PPO and GRPO token losses by finite differences (no file needed).

import Foundation
import Testing
import _SharedData

@testable import Trainers

@Suite struct RLLossTests {
    static let goldenPath = "reference/rlhf_losses_golden.json"
    static func golden(_ key: String) throws -> [String: Any] {
        let all = try JSONSerialization.jsonObject(with: Data(contentsOf: SharedData.url(goldenPath))) as! [String: Any]
        return all[key] as! [String: Any]
    }
    static func d(_ any: Any?) -> [Double] { (any as? [Any] ?? []).map { ($0 as! NSNumber).doubleValue } }
    static func dd(_ any: Any?) -> [[Double]] { (any as? [Any] ?? []).map { d($0) } }
    static func v(_ any: Any?) -> Double { (any as! NSNumber).doubleValue }
    /// Padded rows with a 0/1 mask → the valid prefix of each row.
    static func ragged(_ x: [[Double]], _ mask: [[Double]]) -> [[Double]] {
        zip(x, mask).map { row, m in Array(row.prefix(m.filter { $0 > 0 }.count)) }
    }
    static func close(_ a: Double, _ b: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(abs(a - b) <= 1e-6 * max(1, abs(b)), "\(what): \(a) vs \(b)", sourceLocation: sourceLocation)
    }
    static func close(
        _ a: [[Double]], _ b: [[Double]], _ what: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for (x, y) in zip(a.flatMap { $0 }, b.flatMap { $0 }) { close(x, y, what, sourceLocation: sourceLocation) }
    }

    @Test(SharedData.needs(goldenPath)) func klEstimatorsAndTokenRewards() throws {
        let g = try Self.golden("kl_estimators"), x = g["inputs"] as! [String: Any]
        let p = Self.d(x["logp_policy"]), r = Self.d(x["logp_ref"])
        for k in KLEstimator.allCases {
            let values = zip(p, r).map { k.value(policy: $0, reference: $1) }
            for (a, b) in zip(values, Self.d(g[k.rawValue])) { Self.close(a, b, k.rawValue) }
            Self.close(values.reduce(0, +) / Double(values.count), Self.v(g["\(k.rawValue)_mean"]), "\(k) mean")
        }
        let t = try Self.golden("ppo_token_rewards"), ti = t["inputs"] as! [String: Any]
        let mask = Self.dd(ti["mask"])
        let rewards = RLMath.tokenRewards(
            policy: Self.ragged(Self.dd(ti["logp_policy"]), mask),
            reference: Self.ragged(Self.dd(ti["logp_ref"]), mask),
            scores: Self.d(ti["scores"]), klCoefficient: Self.v(t["kl_coef"]))
        Self.close(rewards, Self.ragged(Self.dd(t["token_rewards"]), mask), "token rewards")
    }

    @Test(SharedData.needs(goldenPath)) func gaeAndWhitening() throws {
        let g = try Self.golden("gae"), x = g["inputs"] as! [String: Any]
        let mask = Self.dd(x["mask"])
        let (a, ret) = RLMath.gae(
            rewards: Self.ragged(Self.dd(x["rewards"]), mask), values: Self.ragged(Self.dd(x["values"]), mask),
            gamma: Self.v(g["gamma"]), lambda: Self.v(g["lambda"]))
        Self.close(a, Self.ragged(Self.dd(g["advantages"]), mask), "advantages")
        Self.close(ret, Self.ragged(Self.dd(g["returns"]), mask), "returns")
        Self.close(RLMath.whiten(a), Self.ragged(Self.dd(g["advantages_whitened"]), mask), "whitened")
    }

    @Test(SharedData.needs(goldenPath)) func ppoLossesAndStatistics() throws {
        let g = try Self.golden("ppo"), x = g["inputs"] as! [String: Any]
        let mask = Self.dd(x["mask"])
        func r(_ key: String) -> [[Double]] { Self.ragged(Self.dd(x[key]), mask) }
        let l = PPOLoss.evaluate(
            logProbs: r("logp_new"), oldLogProbs: r("logp_old"), advantages: r("advantages"), values: r("values_pred"),
            oldValues: r("values_old"), returns: r("returns"), clipRange: Self.v(g["cliprange"]),
            valueClipRange: Self.v(g["cliprange_value"]), valueCoefficient: Self.v(g["vf_coef"]))
        Self.close(l.policyLoss, Self.v(g["pg_loss"]), "pg_loss")
        Self.close(l.valueLoss, Self.v(g["vf_loss"]), "vf_loss")
        Self.close(l.loss, Self.v(g["loss"]), "loss")
        Self.close(l.policyClipFraction, Self.v(g["pg_clipfrac"]), "pg_clipfrac")
        Self.close(l.valueClipFraction, Self.v(g["vf_clipfrac"]), "vf_clipfrac")
        Self.close(l.approxKL, Self.v(g["approx_kl"]), "approx_kl")
    }

    @Test(SharedData.needs(goldenPath)) func adaptiveControllerAndGroupAdvantages() throws {
        let g = try Self.golden("adaptive_kl_controller")
        var c = AdaptiveKLController(
            initial: Self.v(g["init_kl_coef"]), target: Self.v(g["target"]), horizon: Self.v(g["horizon"]))
        for u in g["updates"] as! [[String: Any]] {
            c.update(currentKL: Self.v(u["current_kl"]), steps: (g["n_steps_per_update"] as! NSNumber).intValue)
            Self.close(c.coefficient, Self.v(u["kl_coef_after"]), "kl_coef after KL \(Self.v(u["current_kl"]))")
        }
        let a = try Self.golden("group_advantages"), rewards = Self.dd((a["inputs"] as! [String: Any])["rewards"])
        Self.close(RLMath.grpoAdvantages(rewards), Self.dd(a["grpo_advantages"]), "GRPO")
        Self.close(RLMath.rlooAdvantages(rewards), Self.dd(a["rloo_advantages"]), "RLOO")
    }

    /// ∂L/∂log π (PPO, GRPO in each aggregation) and ∂L/∂V by central differences, away from the clip edges.
    @Test func tokenLossGradientsMatchFiniteDifferences() {
        let new: [[Double]] = [[-1.1, -0.85, -2.1, -0.6], [-1.15, -1.45, -0.15]]
        let old: [[Double]] = [[-1.2, -0.8, -2.5, -0.3], [-0.9, -1.6, -0.2]]
        let ref: [[Double]] = [[-1.0, -0.9, -2.2, -0.5], [-1.3, -1.2, -0.4]]
        let adv: [[Double]] = [[0.5, -1.0, 1.5, 0.2], [-0.8, 0.3, 1.1]]
        let val: [[Double]] = [[0.4, 0.25, 0.2, 0.4], [0.5, 0.9, 0.75]]
        let oldVal: [[Double]] = [[0.1, 0.3, -0.2, 0.5], [1.0, 0.8, 0.6]]
        let ret: [[Double]] = [[0.6, 0.2, 0.7, 0.4], [0.2, 1.1, 0.5]]
        let h = 1e-6
        func ppo(_ lp: [[Double]], _ v: [[Double]]) -> PPOLoss.Result {
            PPOLoss.evaluate(
                logProbs: lp, oldLogProbs: old, advantages: adv, values: v, oldValues: oldVal, returns: ret)
        }
        let p = ppo(new, val)
        for s in new.indices {
            for t in new[s].indices {
                var up = new, down = new
                up[s][t] += h
                down[s][t] -= h
                #expect(abs((ppo(up, val).loss - ppo(down, val).loss) / (2 * h) - p.dLogProbs[s][t]) <= 1e-8)
                var vu = val, vd = val
                vu[s][t] += h
                vd[s][t] -= h
                #expect(abs((ppo(new, vu).loss - ppo(new, vd).loss) / (2 * h) - p.dValues[s][t]) <= 1e-8)
            }
        }
        for aggregation in GRPOLoss.Aggregation.allCases {
            func grpo(_ lp: [[Double]]) -> GRPOLoss.Result {
                GRPOLoss.evaluate(
                    logProbs: lp, oldLogProbs: old, referenceLogProbs: ref, advantages: [0.7, -1.2], beta: 0.04,
                    epsilonLow: 0.2, epsilonHigh: 0.28, aggregation: aggregation, maxCompletionLength: 6)
            }
            let r = grpo(new)
            for s in new.indices {
                for t in new[s].indices {
                    var up = new, down = new
                    up[s][t] += h
                    down[s][t] -= h
                    #expect(
                        abs((grpo(up).loss - grpo(down).loss) / (2 * h) - r.dLogProbs[s][t]) <= 1e-8,
                        "\(aggregation) [\(s)][\(t)]")
                }
            }
        }
    }
}

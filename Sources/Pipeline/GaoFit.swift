// Reward-model over-optimisation (Gao, Schulman & Hilton 2022): the gold reward gained over the starting policy
// as a function of d = √KL(π‖π_ref) follows R_bon(d) = d(α − βd) for best-of-n (eq. 1) and
// R_RL(d) = d(α − β log d) for RL (eq. 2). Both are linear in (α, β), so they are fitted by least squares
// without an intercept (R(0) = 0 by construction).

import Foundation

public struct GaoFit: Codable, Sendable, Equatable {
    public enum Form: String, Codable, Sendable { case bestOfN = "bon", rl }
    public var form: Form
    public var alpha: Double, beta: Double
    /// Coefficient of determination against the points' mean.
    public var r2: Double
    /// Where the fitted curve peaks (nil when β ≤ 0: no peak within the form).
    public var peakD: Double?
    public var points: Int

    /// The fitted gain at `d`.
    public func callAsFunction(_ d: Double) -> Double {
        switch form {
        case .bestOfN: return d * (alpha - beta * d)
        case .rl: return d > 0 ? d * (alpha - beta * log(d)) : 0
        }
    }

    /// Fits `form` to the gains `r` at distances `d`; nil with fewer than two points at d > 0 or a singular system.
    public static func fit(_ form: Form, d: [Double], r: [Double]) -> GaoFit? {
        precondition(d.count == r.count, "one gain per distance")
        // Features: R = α·f1(d) − β·f2(d) with f1 = d and f2 = d² (bon) or d·log d (RL).
        let rows = zip(d, r).filter { $0.0 > 0 }.map { d, r -> (Double, Double, Double) in
            (d, form == .bestOfN ? d * d : d * log(d), r)
        }
        guard rows.count >= 2 else { return nil }
        var s11 = 0.0, s12 = 0.0, s22 = 0.0, t1 = 0.0, t2 = 0.0
        for (f1, f2, y) in rows {
            s11 += f1 * f1
            s12 += f1 * f2
            s22 += f2 * f2
            t1 += f1 * y
            t2 += f2 * y
        }
        let det = s11 * s22 - s12 * s12
        guard abs(det) > 1e-12 * max(1, s11 * s22) else { return nil }
        let a = (t1 * s22 - t2 * s12) / det
        let c = (s11 * t2 - s12 * t1) / det  // coefficient of f2, i.e. −β
        var fit = GaoFit(form: form, alpha: a, beta: -c, r2: 0, peakD: nil, points: d.count)
        let mean = r.reduce(0, +) / Double(r.count)
        var residual = 0.0, total = 0.0
        for (x, y) in zip(d, r) {
            residual += (y - fit(x)) * (y - fit(x))
            total += (y - mean) * (y - mean)
        }
        fit.r2 = total > 0 ? 1 - residual / total : 0
        if fit.beta > 0 {
            // d/dd of d(α − βd) = α − 2βd; of d(α − β log d) = α − β(log d + 1).
            fit.peakD = form == .bestOfN ? fit.alpha / (2 * fit.beta) : exp(fit.alpha / fit.beta - 1)
        }
        return fit
    }
}

/// The KL of best-of-n to its sampling policy (Stiennon et al. 2020 appendix; Gao et al. 2022 §2): log n − (n−1)/n.
public func bestOfNKL(_ n: Int) -> Double { log(Double(n)) - Double(n - 1) / Double(n) }

/// Pearson's correlation; 0 when either side is constant.
public func pearson(_ x: [Double], _ y: [Double]) -> Double {
    precondition(x.count == y.count, "paired samples")
    guard x.count > 1 else { return 0 }
    let mx = x.reduce(0, +) / Double(x.count), my = y.reduce(0, +) / Double(y.count)
    var sxy = 0.0, sxx = 0.0, syy = 0.0
    for (a, b) in zip(x, y) {
        sxy += (a - mx) * (b - my)
        sxx += (a - mx) * (a - mx)
        syy += (b - my) * (b - my)
    }
    return sxx > 0 && syy > 0 ? sxy / (sxx * syy).squareRoot() : 0
}

/// The standard error of the mean of `x` (sample standard deviation / √n); 0 below two samples.
public func standardError(_ x: [Double]) -> Double {
    guard x.count > 1 else { return 0 }
    let m = x.reduce(0, +) / Double(x.count)
    let v = x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)
    return (v / Double(x.count)).squareRoot()
}

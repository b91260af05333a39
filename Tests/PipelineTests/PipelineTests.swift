import Foundation
import TensorCore
import Testing
import Trainers
import _SharedData

@testable import Pipeline

struct GoldJudgeTests {
    let p = TaskPrompt(kind: .sum, a: 12, b: 30, phrasing: 0)

    @Test func aCleanRightAnswerScoresHighest() {
        #expect(abs(GoldJudge.score("12 + 30 = 42.", to: p, finished: true) - 1.5) < 1e-12)
        #expect(abs(GoldJudge.score("The answer is 42.", to: p, finished: true) - 1.3) < 1e-12)
        // Cut at the length limit: no finishing bonus.
        #expect(abs(GoldJudge.score("12 + 30 = 42.", to: p, finished: false) - 1.2) < 1e-12)
        // Wrong result: only the on-topic and finishing parts.
        #expect(abs(GoldJudge.score("12 + 30 = 41.", to: p, finished: true) - 0.5) < 1e-12)
    }

    @Test func lengthAndRepetitionCost() {
        let long = "Let me think about this question carefully and slowly before I answer it, the result is 42."
        // 17 words: 5 beyond the target of 12 → −0.25; no repeated bigram.
        #expect(abs(GoldJudge.score(long, to: p, finished: true) - (1.3 - 0.25)) < 1e-12)
        let words = "42 42 42 42 42"
        // Bigrams "42 42" × 4, 3 of them repeats → −0.8 × 3/4.
        #expect(abs(GoldJudge.score(words, to: p, finished: true) - (1.3 - 0.6)) < 1e-12)
    }

    @Test func differencesAndNegativeNumbersAreRead() {
        let d = TaskPrompt(kind: .difference, a: 40, b: 15, phrasing: 1)
        #expect(d.result == 25)
        #expect(d.question == "Subtract 15 from 40.")
        #expect(GoldJudge.numbersIn("5 - 9 = -4") == [5, 9, -4])
        #expect(GoldJudge.score("40 - 15 = 25.", to: d, finished: true) > 1.4)
    }

    @Test func promptsAreReproducibleFromTheSeed() {
        var a = RNG(seed: 7), b = RNG(seed: 7)
        #expect(TaskPrompt.make(20, kind: .difference, rng: &a) == TaskPrompt.make(20, kind: .difference, rng: &b))
        var c = RNG(seed: 7)
        #expect(TaskPrompt.make(50, kind: .difference, rng: &c).allSatisfy { $0.a >= $0.b })
    }
}

struct AnnotatorTests {
    @Test func labelsFollowBradleyTerryWithFlips() {
        let a = SimulatedAnnotators(temperature: 0.5, flipRate: 0.1)
        let p = 1 / (1 + exp(-1.0 / 0.5))
        #expect(abs(a.probabilityAPreferred(goldA: 1, goldB: 0) - (p * 0.9 + (1 - p) * 0.1)) < 1e-12)
        #expect(abs(a.probabilityAPreferred(goldA: 0.3, goldB: 0.3) - 0.5) < 1e-12)
        // The empirical rate over many labels matches the probability (4σ of a binomial with n = 20000).
        var rng = RNG(seed: 3)
        let n = 20_000
        let hits = (0..<n).filter { _ in a.prefersA(goldA: 1, goldB: 0, rng: &rng) }.count
        let q = a.probabilityAPreferred(goldA: 1, goldB: 0)
        #expect(abs(Double(hits) / Double(n) - q) < 4 * (q * (1 - q) / Double(n)).squareRoot())
    }

    @Test func withoutNoiseTheBetterReplyAlwaysWins() {
        let a = SimulatedAnnotators(temperature: 1e-6, flipRate: 0)
        var rng = RNG(seed: 1)
        #expect((0..<100).allSatisfy { _ in a.prefersA(goldA: 0.6, goldB: 0.5, rng: &rng) })
    }
}

struct GaoFitTests {
    @Test func bestOfNFormIsRecoveredExactly() throws {
        let d = stride(from: 0.0, through: 2.0, by: 0.25).map { $0 }
        let r = d.map { $0 * (0.8 - 0.3 * $0) }
        let fit = try #require(GaoFit.fit(.bestOfN, d: d, r: r))
        #expect(abs(fit.alpha - 0.8) < 1e-9 && abs(fit.beta - 0.3) < 1e-9)
        #expect(abs(fit.r2 - 1) < 1e-9)
        #expect(abs(fit.peakD! - 0.8 / 0.6) < 1e-9)
    }

    @Test func rlFormIsRecoveredAndPeaksWhereTheDerivativeVanishes() throws {
        let d = [0, 0.5, 1, 1.5, 2, 3, 4]
        let r = d.map { $0 > 0 ? $0 * (0.4 - 0.25 * log($0)) : 0 }
        let fit = try #require(GaoFit.fit(.rl, d: d, r: r))
        #expect(abs(fit.alpha - 0.4) < 1e-9 && abs(fit.beta - 0.25) < 1e-9)
        let peak = try #require(fit.peakD)
        // Finite-difference check of the peak.
        let h = 1e-4
        #expect(abs((fit(peak + h) - fit(peak - h)) / (2 * h)) < 1e-6)
        #expect(fit(peak) > fit(peak * 0.9) && fit(peak) > fit(peak * 1.1))
    }

    @Test func noisyPointsGiveAnR2BelowOneAndTooFewPointsNoFit() throws {
        let d = [0.5, 1, 1.5, 2]
        let fit = try #require(GaoFit.fit(.bestOfN, d: d, r: [0.3, 0.45, 0.5, 0.38]))
        #expect(fit.r2 < 1 && fit.r2 > 0.5)
        #expect(GaoFit.fit(.rl, d: [0, 1], r: [0, 0.2]) == nil)
    }

    @Test func bestOfNKLMatchesTheClosedForm() {
        #expect(bestOfNKL(1) == 0)
        #expect(abs(bestOfNKL(64) - (log(64) - 63.0 / 64)) < 1e-12)
        #expect(abs(pearson([1, 2, 3], [2, 4, 6]) - 1) < 1e-12 && pearson([1, 1], [0, 5]) == 0)
        // Sample std of [1, 2, 3] is 1 → standard error 1/√3.
        #expect(abs(standardError([1, 2, 3]) - 1 / 3.0.squareRoot()) < 1e-12 && standardError([4]) == 0)
    }
}

struct OverOptimisationTests {
    func point(_ d: Double, proxy: Double, gold: Double, se: Double = 0.01) -> OptimisationPoint {
        OptimisationPoint(x: d, kl: d * d, d: d, proxy: proxy, gold: gold, goldStdErr: se, words: 5, klCoef: nil)
    }

    @Test func goldFallingWhileTheProxyRisesIsObserved() {
        let o = OverOptimisation.read([
            point(0, proxy: 0, gold: 0.5), point(1, proxy: 0.5, gold: 0.7), point(2, proxy: 0.9, gold: 0.4),
        ])
        #expect(o.observed && o.peakD == 1 && abs(o.goldAfterPeak + 0.3) < 1e-12, "\(o)")
        let rising = OverOptimisation.read([point(0, proxy: 0, gold: 0.5), point(1, proxy: 0.5, gold: 0.7)])
        #expect(!rising.observed && rising.explanation.contains("highest at the end"))
    }

    @Test func aDropWithinTheNoiseIsNotCalledOverOptimisation() {
        let noisy = [
            point(0, proxy: 0, gold: 0.5, se: 0.2), point(1, proxy: 0.5, gold: 0.7, se: 0.2),
            point(2, proxy: 0.9, gold: 0.6, se: 0.2),
        ]
        let o = OverOptimisation.read(noisy)
        #expect(!o.observed && o.explanation.contains("noise") && abs(o.goldNoise - 2 * (0.08).squareRoot()) < 1e-12)
        // Averaging windows of two: peak window (0.5+0.7)/2 = 0.6, last (0.7+0.6)/2 = 0.65 → still rising.
        #expect(OverOptimisation.read(noisy, window: 2).explanation.contains("highest at the end"))
    }

    @Test func bothFallingIsNotTheOverOptimisationPattern() {
        let o = OverOptimisation.read([
            point(0, proxy: 0.5, gold: 0.5), point(1, proxy: 0.6, gold: 0.9), point(2, proxy: 0.2, gold: 0.3),
        ])
        #expect(!o.observed && o.explanation.contains("proxy fell too"))
    }
}

struct DemoConfigTests {
    /// Loads `text` as a config file over `base` (the file is removed afterwards).
    func load(_ text: String, over base: DemoConfig) throws -> DemoConfig {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("demo-config-\(UUID()).json")
        try Data(text.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        return try DemoConfig.load(file: url, over: base)
    }

    @Test func overridesApplyOverTheChosenDefaults() throws {
        let c = try load(#"{"ppo_iterations": 5, "ppo_kl_coef": 0.2}"#, over: .quick)
        #expect(c.ppoIterations == 5 && c.ppoKlCoef == 0.2 && c.sftSteps == DemoConfig.quick.sftSteps)
    }

    @Test func badConfigsNameTheKey() throws {
        for (text, key) in [
            (#"{"ppo_iteration": 5}"#, "ppo_iteration"), (#"{"ppo_iterations": "ten"}"#, "ppo_iterations"),
            (#"{"annotator_flip_rate": 0.7}"#, "annotator_flip_rate"), (#"{"bon_max_n": 48}"#, "bon_max_n"),
            (#"{"sft_steps": 2.5}"#, "sft_steps"),
        ] {
            #expect {
                try load(text, over: DemoConfig())
            } throws: { "\($0)".contains(key) }
        }
    }

    @Test func aWrongTypeQuotesTheDefaultOfThePresetInUse() throws {
        for (base, expected) in [(DemoConfig(), DemoConfig().sftSteps), (.quick, DemoConfig.quick.sftSteps)] {
            #expect {
                try load(#"{"sft_steps": 2.5}"#, over: base)
            } throws: { "\($0)".contains("sft_steps") && "\($0)".contains("an integer (default \(expected))") }
        }
    }
}

struct ReportHTMLTests {
    @Test func textIsEscapedAndChartsAreDrawn() {
        var r = DemoReport(config: .quick, model: "m<1>", task: "t & u")
        let ev = PolicyEvaluation(
            meanGold: 1, correct: 1, meanWords: 3, winRate: nil, opponent: nil,
            samples: [SampleReply(prompt: "<script>x</script>", reply: "a \"b\"", gold: 1, words: 2)])
        r.baseline = BaselineResult(base: ev)
        r.sft = SFTResult(examples: 1, loss: [CurvePoint(1, 2), CurvePoint(2, 1)], policy: ev, adapter: "sft/adapter")
        let html = ReportHTML.render(r)
        #expect(!html.contains("<script>") && html.contains("&lt;script&gt;") && html.contains("m&lt;1&gt;"))
        #expect(html.contains("<polyline") && html.contains("SFT loss"))
        #expect(ReportHTML.chart(title: "empty", x: "x", y: "y", []).contains("no data"))
        let scatter = ReportHTML.chart(
            title: "s", x: "x", y: "y", [ReportHTML.Series("a", "#000000", [(0, 1), (1, 2)], line: false)])
        #expect(!scatter.contains("<polyline") && scatter.components(separatedBy: "<circle").count - 1 == 2)
    }
}

struct ReportRenderTests {
    /// A report with every section, rendered by a real browser: the proxy, gold and fit colours are on the page
    /// (the charts are drawn, not a blank page).
    @Test(Browser.needed) func reportRendersInHeadlessChromium() throws {
        var r = DemoReport(config: .quick, model: "smollm2", task: "sums")
        let points = (0..<8).map { i -> OptimisationPoint in
            let d = Double(i) * 0.3
            return OptimisationPoint(
                x: Double(i), kl: d * d, d: d, proxy: 0.4 * d, gold: 0.5 + d * (0.6 - 0.4 * d), goldStdErr: 0.01,
                words: 6 + Double(i),
                klCoef: 0.05)
        }
        let ev = PolicyEvaluation(meanGold: 1, correct: 0.5, meanWords: 4, winRate: 0.6, opponent: "SFT", samples: [])
        r.ppo = RLResult(
            points: points, heldOut: points, fit: GaoFit.fit(.rl, d: points.map(\.d), r: points.map { $0.gold - 0.5 }),
            overOptimisation: OverOptimisation.read(points), policy: ev, loss: [CurvePoint(0, 1), CurvePoint(1, 0.5)],
            exports: [])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let page = dir.appendingPathComponent("report.html"), png = dir.appendingPathComponent("report.png")
        try Data(ReportHTML.render(r).utf8).write(to: page)
        try Browser.screenshot(page, to: png)
        let counts = try Browser.colourCounts(
            png, [ReportHTML.proxyColor, ReportHTML.goldColor, ReportHTML.fitColor])
        for colour in [ReportHTML.proxyColor, ReportHTML.goldColor, ReportHTML.fitColor] {
            #expect((counts[colour] ?? 0) > 100, "\(colour): \(counts)")
        }
    }
}

// `report.html`: the demo's figures as one self-contained page (inline SVG, no scripts, no network). Every text
// that came from a model or a file is escaped.

import Foundation

public enum ReportHTML {
    /// One line of a chart.
    public struct Series {
        public var name: String
        public var color: String
        public var points: [(x: Double, y: Double)]
        public var dashed = false
        public var markers = true
        /// false: markers only (a scatter, for points whose x is not monotone, like PPO's d).
        public var line = true
        public init(
            _ name: String, _ color: String, _ points: [(x: Double, y: Double)], dashed: Bool = false,
            markers: Bool = true, line: Bool = true
        ) {
            self.name = name
            self.color = color
            self.points = points
            self.dashed = dashed
            self.markers = markers
            self.line = line
        }
    }

    /// The palette (the render test looks for these colours in the screenshot).
    public static let proxyColor = "#1f77b4", goldColor = "#d62728", fitColor = "#2ca02c", otherColor = "#9467bd"

    public static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }

    static func number(_ x: Double) -> String {
        guard x.isFinite else { return "–" }
        if x == 0 { return "0" }
        let a = abs(x)
        if a >= 1000 || a < 0.01 { return String(format: "%.2g", x) }
        if a >= 10 { return String(format: "%.0f", x) }
        return String(format: "%.2f", x)
    }

    /// A line chart as inline SVG.
    public static func chart(title: String, x xLabel: String, y yLabel: String, _ series: [Series]) -> String {
        let width = 460.0, height = 280.0, left = 56.0, right = 12.0, top = 28.0, bottom = 44.0
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
            + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(escape(title))\">"
            + "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
            + "<text x=\"\(Int(width / 2))\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">"
            + "\(escape(title))</text>"
        guard !all.isEmpty else {
            return svg + "<text x=\"\(Int(width / 2))\" y=\"\(Int(height / 2))\" text-anchor=\"middle\" "
                + "font-size=\"12\" fill=\"#888\">no data</text></svg>"
        }
        var x0 = all.map(\.x).min()!, x1 = all.map(\.x).max()!
        var y0 = all.map(\.y).min()!, y1 = all.map(\.y).max()!
        if x1 - x0 < 1e-12 { (x0, x1) = (x0 - 1, x1 + 1) }
        if y1 - y0 < 1e-12 { (y0, y1) = (y0 - 1, y1 + 1) }
        let pad = (y1 - y0) * 0.06
        (y0, y1) = (y0 - pad, y1 + pad)
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
        svg += "<g font-size=\"10\" fill=\"#444\" stroke=\"none\">"
        for i in 0...4 {
            let fy = y0 + (y1 - y0) * Double(i) / 4, fx = x0 + (x1 - x0) * Double(i) / 4
            svg += String(
                format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>", left, py(fy),
                width - right, py(fy))
            svg +=
                String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", left - 4, py(fy) + 3)
                + number(fy) + "</text>"
            svg +=
                String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", px(fx), height - bottom + 14)
                + number(fx) + "</text>"
        }
        svg += String(
            format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>", left,
            top, plotW, plotH)
        svg +=
            "<text x=\"\(Int(left + plotW / 2))\" y=\"\(Int(height - 6))\" text-anchor=\"middle\">"
            + "\(escape(xLabel))</text>"
        svg +=
            "<text transform=\"translate(12 \(Int(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">"
            + "\(escape(yLabel))</text></g>"
        for (k, s) in series.enumerated() {
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            guard !pts.isEmpty else { continue }
            let path = pts.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
            if s.line {
                svg +=
                    "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2.5\" points=\"\(path)\""
                    + (s.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>"
            }
            if s.markers {
                let radius = s.line ? 3 : 4
                for p in pts {
                    svg += String(
                        format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%@\"/>", px(p.x), py(p.y), radius,
                        s.color)
                }
            }
            let ly = top + 12 + Double(k) * 14
            svg += String(
                format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"2.5\"%@/>",
                left + 8, ly - 4, left + 26, ly - 4, s.color, s.dashed ? " stroke-dasharray=\"4 3\"" : "")
            svg +=
                String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">", left + 30, ly) + escape(s.name)
                + "</text>"
        }
        return svg + "</svg>"
    }

    static func curve(_ c: [CurvePoint]) -> [(x: Double, y: Double)] { c.map { ($0.x, $0.y) } }

    /// The fitted gold curve (gain + the starting gold) over the points' range of d.
    static func fitted(_ fit: GaoFit?, _ points: [OptimisationPoint]) -> Series? {
        guard let fit, let first = points.first, let dMax = points.map(\.d).max(), dMax > 0 else { return nil }
        let curve = (0...40).map { i -> (x: Double, y: Double) in
            let d = dMax * Double(i) / 40
            return (d, first.gold + fit(d))
        }
        return Series(
            String(format: "gold fit: d(%.2f − %.2f·%@)", fit.alpha, fit.beta, fit.form == .rl ? "log d" : "d"),
            fitColor, curve, dashed: true, markers: false)
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        "<table><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
            + rows.map { "<tr>" + $0.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }.joined() + "</table>"
    }

    public static func render(_ r: DemoReport) -> String {
        var body = "<h1>RLHFKit demo report</h1>"
        body += "<p>Model: <code>\(escape(r.model))</code>, seed \(r.config.seed). Task: \(escape(r.task))</p>"
        if !r.summary.isEmpty {
            body += "<h2>Summary</h2><ul>" + r.summary.map { "<li>\(escape($0))</li>" }.joined() + "</ul>"
        }
        // Policies.
        var rows: [[String]] = []
        func add(_ name: String, _ e: PolicyEvaluation?) {
            guard let e else { return }
            rows.append([
                name, number(e.meanGold), number(e.correct), number(e.meanWords),
                e.winRate.map { number($0) + " vs " + (e.opponent ?? "–") } ?? "–",
                e.sampled.map { number($0.meanGold) + " ± " + number($0.goldStdErr) } ?? "–",
                e.sampled?.winRate.map(number) ?? "–",
            ])
        }
        add("base", r.baseline?.base)
        add("SFT", r.sft?.policy)
        add("PPO", r.ppo?.policy)
        add("best-of-\(r.config.bonMaxN)", r.bestOfN?.policy)
        add("DPO", r.dpo?.policy)
        add("GRPO", r.grpo?.policy)
        body +=
            "<h2>Policies</h2>"
            + table(
                [
                    "policy", "mean gold reward (greedy)", "right result", "mean words", "gold win-rate",
                    "mean gold, \(r.config.evalSamples) samples per prompt", "sampled win-rate",
                ], rows)
        // Training curves.
        body += "<h2>Training</h2><div class=\"charts\">"
        if let s = r.sft {
            body += chart(title: "SFT loss", x: "step", y: "loss", [Series("loss", otherColor, curve(s.loss))])
        }
        if let m = r.reward {
            body += chart(
                title: "Reward model: loss and accuracy", x: "step", y: "value",
                [
                    Series("loss", otherColor, curve(m.loss)),
                    Series("accuracy (annotator labels)", proxyColor, curve(m.trainAccuracy)),
                ])
        }
        if let d = r.dpo {
            body += chart(title: "DPO loss", x: "step", y: "loss", [Series("loss", otherColor, curve(d.loss))])
        }
        body += "</div>"
        if let m = r.reward, let p = r.pairs {
            body +=
                "<h2>Reward model</h2>"
                + table(
                    ["measure", "value"],
                    [
                        ["training pairs (annotator labels)", "\(p.trainPairs)"],
                        ["annotator labels agreeing with gold", number(p.labelAgreement)],
                        ["accuracy vs gold, held-out sums (\(p.heldOutPairs) pairs)", number(m.heldOutAccuracy)],
                        ["accuracy vs gold, differences: another kind (\(p.oodPairs) pairs)", number(m.oodAccuracy)],
                        ["correlation with length in words: proxy", number(m.proxyLengthCorrelation)],
                        ["correlation with length in words: gold", number(m.goldLengthCorrelation)],
                    ])
        }
        // Over-optimisation.
        body += "<h2>Over-optimisation (Gao et al. 2022)</h2><div class=\"charts\">"
        if let p = r.ppo {
            // Rollout points: d is not monotone in the iteration (KL moves both ways), so they are a scatter.
            body += chart(
                title: "PPO rollouts (one point per iteration)", x: "d = √KL(π‖π_SFT)", y: "reward",
                [
                    Series("proxy (normalised RM score)", proxyColor, p.points.map { ($0.d, $0.proxy) }, line: false),
                    Series("gold", goldColor, p.points.map { ($0.d, $0.gold) }, line: false),
                ])
            var series = [
                Series("proxy", proxyColor, p.heldOut.map { ($0.d, $0.proxy) }),
                Series("gold", goldColor, p.heldOut.map { ($0.d, $0.gold) }),
            ]
            if let f = fitted(p.fit, p.heldOut) { series.append(f) }
            body += chart(
                title: "PPO: held-out replies (\(r.config.evalSamples) samples per prompt)", x: "d = √KL(π‖π_SFT)",
                y: "reward", series)
        }
        if let b = r.bestOfN {
            var series = [
                Series("proxy (normalised RM score)", proxyColor, b.points.map { ($0.d, $0.proxy) }),
                Series("gold", goldColor, b.points.map { ($0.d, $0.gold) }),
            ]
            if let f = fitted(b.fit, b.points) { series.append(f) }
            body += chart(title: "Best-of-n (n = 1, 2, 4, …)", x: "d = √KL(π‖π_SFT)", y: "reward", series)
        }
        if let p = r.ppo {
            body += chart(
                title: "PPO: KL and β per iteration", x: "iteration", y: "value",
                [
                    Series("KL (nats)", otherColor, p.points.map { ($0.x, $0.kl) }),
                    Series("β", fitColor, p.points.compactMap { q in q.klCoef.map { (q.x, $0) } }, dashed: true),
                ])
            let limit = Double(GoldJudge.targetWords)
            body += chart(
                title: "PPO: reply length (bias)", x: "iteration", y: "words",
                [
                    Series("mean words of the rollouts", proxyColor, p.points.map { ($0.x, $0.words) }),
                    Series(
                        "gold judge: no cost up to \(GoldJudge.targetWords) words", goldColor,
                        [(p.points.first?.x ?? 0, limit), (p.points.last?.x ?? 1, limit)], dashed: true,
                        markers: false),
                ])
            body += chart(title: "PPO loss", x: "step", y: "loss", [Series("loss", otherColor, curve(p.loss))])
        }
        if let g = r.grpo {
            body += chart(
                title: "GRPO: proxy and gold reward", x: "step", y: "reward",
                [
                    Series("proxy", proxyColor, g.points.map { ($0.x, $0.proxy) }),
                    Series("gold", goldColor, g.points.map { ($0.x, $0.gold) }),
                ])
        }
        body += "</div>"
        var fitRows: [[String]] = []
        for (name, fit, over) in [
            ("PPO, held-out: R_RL(d) = d(α − β log d)", r.ppo?.fit, r.ppo?.overOptimisation),
            ("best-of-n: R_bon(d) = d(α − βd)", r.bestOfN?.fit, r.bestOfN?.overOptimisation),
        ] {
            guard let over else { continue }
            fitRows.append([
                name, fit.map { number($0.alpha) } ?? "–", fit.map { number($0.beta) } ?? "–",
                fit.map { number($0.r2) } ?? "–", fit?.peakD.map(number) ?? "–", over.explanation,
            ])
        }
        body += table(["form", "α", "β", "R²", "fitted peak d", "observed"], fitRows)
        // Samples.
        if let sft = r.sft?.policy {
            var sampleRows: [[String]] = []
            for i in 0..<min(4, sft.samples.count) {
                var row = [sft.samples[i].prompt, r.baseline?.base.samples[i].reply ?? "", sft.samples[i].reply]
                for e in [r.ppo?.policy, r.dpo?.policy, r.grpo?.policy] {
                    row.append(e.map { i < $0.samples.count ? $0.samples[i].reply : "" } ?? "–")
                }
                sampleRows.append(row)
            }
            body +=
                "<h2>Sample replies (greedy)</h2>"
                + table(["prompt", "base", "SFT", "PPO", "DPO", "GRPO"], sampleRows)
        }
        body +=
            "<h2>Time and memory</h2>"
            + table(
                ["stage", "seconds", "peak RSS (MB)"],
                r.timings.map { [$0.stage, String(format: "%.1f", $0.seconds), String(format: "%.0f", $0.peakRSSMB)] })
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>RLHFKit demo report</title>
            <style>
            body { font-family: sans-serif; margin: 24px; max-width: 1000px; color: #222; }
            table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
            td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
            .charts { display: flex; flex-wrap: wrap; gap: 12px; }
            code { background: #f4f4f4; padding: 1px 4px; }
            </style></head><body>
            \(body)
            </body></html>
            """
    }
}

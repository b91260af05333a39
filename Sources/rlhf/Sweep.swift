// `rlhf sweep`: the demo once per value of one setting, on the pilot fraction of the data by default, ranked by
// PPO's gold reward at a common KL (see DemoSweep).

import ArgumentParser
import Foundation
import Pipeline

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the demo for several values of one setting and rank them by gold reward at a fixed KL.",
        discussion: """
            Example: rlhf sweep --key ppo_kl_coef --values 0.005,0.02,0.1 --data-fraction 0.1. Each variant is \
            a demo in OUT/<key>=<value>/ (its own report.html); the stages the setting does not touch are taken \
            from the first variant. OUT/sweep.json holds the ranking.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(
        help: ArgumentHelp(
            "The demo setting to vary (a key of the demo config, e.g. ppo_kl_coef, ppo_learning_rate, "
                + "reward_lora_rank, annotator_flip_rate)."))
    var key: String
    @Option(help: "Comma-separated values.") var values: String
    @Option(help: "Output directory.") var out: String = "sweep-output"
    @Option(help: "Pilot mode: the share of the training prompts (the seed's advice: 5–10 %).")
    var dataFraction: Double = 0.1
    @Flag(help: "The demo's toy sizes.") var quick = false
    @Option(help: "A JSON or YAML file of demo settings.") var config: String?
    @Option(help: "Seed.") var seed: UInt64?

    func run() throws {
        var c = quick ? DemoConfig.quick : DemoConfig()
        if let config { c = try DemoConfig.load(file: URL(fileURLWithPath: config), over: c) }
        if let seed { c.seed = seed }
        c.dataFraction = dataFraction
        try c.validate(source: "flags")
        let list = values.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard list.count >= 2 else { throw ValidationError("Pass at least two --values, comma-separated.") }
        try Demo.checkDense(modelOptions)
        Interrupt.install()
        let observer = Demo.terminalObserver()
        let result = try DemoSweep.run(
            base: c, key: key, values: list, load: { try modelOptions.load(trainable: false) },
            baseModel: modelOptions.model, out: URL(fileURLWithPath: out), observer: observer)
        print(
            String(
                format: "%@ ranked by PPO's gold reward near d = %.2f (√KL every variant reached):", key, result.commonD
            ))
        print("value        gold@d   PPO gold  win-rate  RM acc  over-optimised (PPO / best-of-n)  best-of-n α, β")
        for v in result.variants {
            print(
                String(
                    format: "%@ %6.3f   %6.3f    %@    %5.3f   %@ / %@          %@",
                    v.value.padding(toLength: 12, withPad: " ", startingAt: 0),
                    v.goldAtCommonD, v.ppoGold,
                    v.ppoWinRate.map { String(format: "%6.3f", $0) } ?? "  –   ", v.rewardHeldOutAccuracy,
                    v.ppoOverOptimised ? "yes" : "no", v.bestOfNOverOptimised ? "yes" : "no",
                    v.bestOfNFit.map { String(format: "%.2f, %.2f", $0.alpha, $0.beta) } ?? "–"))
        }
        print("\(out)/sweep.json; each variant's report in \(out)/\(key)=<value>/report.html")
    }
}

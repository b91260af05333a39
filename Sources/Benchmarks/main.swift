// Benchmarks: prints figures a person can compare with shared/anchors/perf.md. Not a test.
// Usage: swift run -c release Benchmarks [gemm] [kernels] [generate | generate1 | generate16] [fp32] [quantised] [bf16]
//        [logprobs] [train | train-full | train-lora] [train-memory] [prefix] [reward] [dpo] [grpo] [ppo] [full] [lora]
//        | all
//        mpirun -np 2 .build/release/Benchmarks allreduce    (the data-parallel gradient exchange)
// (`reward` / `dpo` / `grpo`: the trainers end to end, one process per variant full / lora / bf16; `ppo`: one
// LoRA iteration split by phase, then an SFT LoRA run for the RSS comparison)
// (fp32 / quantised / bf16 pick the weight formats the generate parts run; default all three)

import Foundation
import TensorCore

if CommandLine.arguments.dropFirst().first == "allreduce" {  // under mpirun: every rank runs it, rank 0 prints
    try DistributedBenchmarks.run()
    exit(0)
}
if let part = CommandLine.arguments.dropFirst().first, part.hasSuffix("-one") {  // a child of `reward` / `dpo`
    MatMul.configureThreads()
    try PreferenceBenchmarks.runOne(
        String(part.dropLast(4)), variant: CommandLine.arguments.dropFirst(2).first ?? "full")
    exit(0)
}
// First line: which kernel path runs (RLHF_CPU=avx512|avx2|portable forces a lower one), so figures from
// different machines or paths are never compared unlabelled.
print("\(KernelDispatch.summary), threads: \(ThreadPool.shared.threadCount), GEMM: \(MatMul.mode.rawValue)")
if let problem = KernelDispatch.environmentProblem(ProcessInfo.processInfo.environment) { print("warning: \(problem)") }
MatMul.configureThreads()
warmUpCores()
let args = CommandLine.arguments.dropFirst()
let which = Set(args.isEmpty ? ["all"] : args)
if which.contains("gemm") || which.contains("all") { KernelBenchmarks.gemm(); print() }
if which.contains("kernels") || which.contains("all") { KernelBenchmarks.kernels(); print() }
if which.contains("gemv") || which.contains("all") { KernelBenchmarks.gemv(); print() }
if which.contains("quantized") || which.contains("all") { QuantizedBenchmarks.run(); print() }
if which.contains("lora-gemm") || which.contains("all") { KernelBenchmarks.loraShapes(); print() }
if which.contains("attention") || which.contains("all") { KernelBenchmarks.attention(); print() }
if which.contains("train-gemms") { KernelBenchmarks.trainingGemms(); print() }
let modelParts =
    which.contains("all")
    ? Set(["generate", "logprobs"]) : which.intersection(["generate", "generate1", "generate16", "logprobs"])
let formats = which.intersection(["fp32", "quantised", "bf16"])
if !modelParts.isEmpty {
    try ModelBenchmarks.run(modelParts, formats: formats.isEmpty ? ["fp32", "quantised", "bf16"] : formats); print()
}
let trainParts =
    which.contains("all") ? Set(["train"]) : which.intersection(["train", "train-full", "train-lora", "train-memory"])
if !trainParts.isEmpty { try TrainBenchmarks.run(trainParts) }
if which.contains("prefix") { try TrainBenchmarks.prefixSharing(); print() }
if !which.intersection(["reward", "dpo", "grpo", "ppo"]).isEmpty { try PreferenceBenchmarks.run(which) }

// swift-tools-version:6.0
// RLHFKit: the whole RLHF pipeline for small language models on a CPU, in Swift.
// Targets are layers; dependencies point one way:
//   _CBLAS, _CKernels ← TensorCore ← Models ← Trainers ← Pipeline ← rlhf
//   ModelFormats (GGUF, safetensors) and Tokenizers depend on Foundation only.
import Foundation
import PackageDescription

let package = Package(
    name: "RLHFKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "ModelFormats", targets: ["ModelFormats"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "ChatTemplates", targets: ["ChatTemplates"]),
        .library(name: "Datasets", targets: ["Datasets"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "ModelExport", targets: ["ModelExport"]),
        .library(name: "Trainers", targets: ["Trainers"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .executable(name: "rlhf", targets: ["rlhf"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // BLAS: Debian's OpenBLAS on Linux, Accelerate on Apple platforms. Not API.
        .systemLibrary(
            name: "_CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Compute-bound kernels (exp/log) in C with AVX-512 target attributes and runtime dispatch.
        .target(name: "_CKernels"),
        .target(name: "TensorCore", dependencies: ["_CBLAS", "_CKernels"]),
        .target(name: "ModelFormats"),
        .target(name: "Tokenizers", dependencies: ["ModelFormats"]),  // bounded file reads (FileContents)
        // Jinja subset for chat templates (SmolLM2, Qwen2.5, Llama-3, Zephyr).
        .target(name: "ChatTemplates"),
        // JSONL datasets in TRL's formats, validation with file/line/field errors, encoding with loss masks.
        .target(name: "Datasets", dependencies: ["Tokenizers", "ChatTemplates"]),
        .target(name: "Models", dependencies: ["TensorCore", "ModelFormats", "Tokenizers", "ChatTemplates"]),
        // Export: PEFT adapters, merged HF checkpoint directories, GGUF (F32/F16/Q8_0).
        .target(name: "ModelExport", dependencies: ["Models", "ModelFormats", "Tokenizers", "TensorCore"]),
        // Data-parallel runs: Open MPI loaded at run time when started by mpirun (no build-time MPI dependency).
        .target(name: "Distributed"),
        // Trainers: configs, checkpoints, metrics and the training loops (SFT; reward, DPO, PPO next).
        .target(
            name: "Trainers",
            dependencies: [
                "Models", "Datasets", "TensorCore", "ModelFormats", "ModelExport", "Distributed",
                .product(name: "Yams", package: "Yams"),
            ]),
        // The demo pipeline: a built-in task with a gold judge, simulated annotators, every stage, the
        // over-optimisation fits and the HTML report.
        .target(name: "Pipeline", dependencies: ["Trainers", "Models", "Datasets", "ModelExport", "TensorCore"]),
        .executableTarget(
            name: "rlhf",
            dependencies: [
                "Models", "TensorCore", "ModelFormats", "Tokenizers", "ModelExport", "Trainers", "Datasets", "Pipeline",
                "Distributed", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "Benchmarks",
            dependencies: [
                "TensorCore", "Models", "ModelFormats", "ModelExport", "Tokenizers", "Datasets", "Trainers", "_CBLAS",
                "Distributed",
            ]),
        // Where `../shared` is, and the trait that skips a test needing it when it is absent; not API.
        .target(name: "_SharedData"),
        // What each fuzz target does with an input, and its seeds (libFuzzer: scripts/fuzz.sh; replayed by the tests).
        .target(
            name: "_FuzzHarness",
            dependencies: [
                "ChatTemplates", "Datasets", "ModelExport", "ModelFormats", "Models", "Tokenizers", "Trainers",
                "_SharedData", "_TestSupport",
            ]),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["_FuzzHarness"], exclude: ["Findings"]),
        // Helpers shared by the test targets (gradient checker, small random models); not API.
        .target(name: "_TestSupport", dependencies: ["TensorCore", "Models", "_SharedData"]),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "_TestSupport"]),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats", "_SharedData"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "ModelFormats", "_SharedData"]),
        .testTarget(
            name: "DatasetsTests",
            dependencies: ["Datasets", "Tokenizers", "ChatTemplates", "ModelFormats", "_SharedData"]),
        .testTarget(
            name: "ChatTemplatesTests", dependencies: ["ChatTemplates", "Tokenizers", "ModelFormats", "_SharedData"]),
        // Runs the built `rlhf` binary (a dependency, so `swift test` builds it first).
        .testTarget(name: "CLITests", dependencies: ["rlhf", "_SharedData"]),
        .testTarget(
            name: "ModelExportTests",
            dependencies: [
                "ModelExport", "Models", "ModelFormats", "Tokenizers", "TensorCore", "_TestSupport", "_SharedData",
            ]),
        .testTarget(
            name: "TrainersTests",
            dependencies: [
                "Trainers", "Models", "ModelExport", "Datasets", "Tokenizers", "TensorCore", "ModelFormats",
                "_TestSupport", "_SharedData",
            ]),
        .testTarget(
            name: "PipelineTests", dependencies: ["Pipeline", "Trainers", "ModelExport", "TensorCore", "_SharedData"]),
        .testTarget(
            name: "ModelsTests",
            dependencies: [
                "Models", "TensorCore", "ModelFormats", "Tokenizers", "ChatTemplates", "_TestSupport", "_SharedData",
            ]),
    ]
)

// libFuzzer targets for every reader of untrusted input, only in the build `scripts/fuzz.sh` makes (RLHF_FUZZ=1,
// compiled with -sanitize=fuzzer,address; it hands main to libFuzzer's driver).
if ProcessInfo.processInfo.environment["RLHF_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(
            name: "FuzzTargets",
            dependencies: ["_FuzzHarness"]))
}

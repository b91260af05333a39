// The `rlhf` command-line tool: one file per subcommand; shared options in Options.swift.

import ArgumentParser
import Distributed
import Foundation
import TensorCore

@main
struct RLHF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rlhf",
        abstract: "Align small language models on a CPU: SFT, reward models, PPO/DPO, LoRA.",
        subcommands: [
            Demo.self, Sweep.self, SFT.self, Reward.self, DPO.self, PPOCommand.self, GRPO.self, RLOO.self,
            BestOfNCommand.self,
            EvalReward.self,
            Score.self, Export.self,
            Generate.self,
            Chat.self,
            Tokenize.self, LogProbs.self, Inspect.self,
            Models.self,
        ])

    static func main() {
        if let problem = KernelDispatch.environmentProblem(ProcessInfo.processInfo.environment) {
            note("error: \(problem)")
            Foundation.exit(2)
        }
        MatMul.configureThreads()
        do {
            var command = try parseAsRoot()
            if World.launchedSize > 1 && !(command is DataParallelCommand) && !(command is RLHF) {
                throw InputError(
                    "`mpirun` starts the trainers (sft, reward, dpo, ppo, grpo, rloo) as data-parallel ranks; run "
                        + "`rlhf \(type(of: command).configuration.commandName ?? "")` as one process, without mpirun "
                        + "(\(World.launchedSize) copies would repeat the work and write the same files).")
            }
            try command.run()
        } catch {
            // Under mpirun a failing rank ends them all: the others would wait in the next collective forever.
            if let world = World.started, world.size > 1 {
                FileHandle.standardError.write(Data("rank \(world.rank) of \(world.size): error: \(error)\n".utf8))
                world.abort(code: 1)
            }
            exit(withError: error)
        }
    }
}

/// A trainer that runs data-parallel under `mpirun` (rank 0 writes the outputs); other commands refuse mpirun.
protocol DataParallelCommand {}

/// Prints to standard error (progress and diagnostics never mix with machine-readable stdout); under mpirun
/// only rank 0's line (every rank runs the same job).
func note(_ s: String) {
    guard World.launchedRank == 0 else { return }
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Prints an Encodable value as one JSON object on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// A problem with what the user passed, found while running (printed without the usage text).
struct InputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// libFuzzer's entry points over `_FuzzHarness`, built only by scripts/fuzz.sh (RLHF_FUZZ=1, -sanitize=fuzzer,address).
// SwiftPM gives an executable its own `main`, so this one hands control to libFuzzer's driver (LLVMFuzzerRunDriver,
// which also calls LLVMFuzzerInitialize). RLHF_FUZZ_TARGET picks the target; RLHF_FUZZ_SEEDS=DIR writes its seed
// inputs into DIR and exits.

import Foundation
import _FuzzHarness

func printError(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

let target: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["RLHF_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        printError("RLHF_FUZZ_TARGET must be one of: \(names) (got '\(name)')\n")
        exit(2)
    }
    return t
}()

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
    _ = target
    guard let dir = ProcessInfo.processInfo.environment["RLHF_FUZZ_SEEDS"] else { return 0 }
    exit(writeSeeds(to: dir) ? 0 : 1)  // after the seeds are freed, so the leak check has nothing to report
}

func writeSeeds(to dir: String) -> Bool {
    do {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (i, seed) in try target.seeds().enumerated() {
            try seed.write(to: URL(fileURLWithPath: dir).appendingPathComponent("seed-\(i + 1)"))
        }
        return true
    } catch {
        printError("cannot write the seeds: \(error)\n")
        return false
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    do { try target.run(Data(bytes: bytes, count: count)) } catch {
        printError("finding: \(error)\n")
        abort()
    }
    return 0
}

/// libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer).
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@main
enum FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(runDriver(&argc, &argv, fuzzerTestOneInput))
    }
}

// libFuzzer's entry points over `_FuzzHarness`, built only by scripts/fuzz.sh (RLHF_FUZZ=1, -sanitize=fuzzer,address
// -parse-as-library; libFuzzer supplies main). RLHF_FUZZ_TARGET picks the target; RLHF_FUZZ_SEEDS=DIR writes its
// seed inputs into DIR and exits.

import Foundation
import _FuzzHarness

let target: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["RLHF_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        fputs("RLHF_FUZZ_TARGET must be one of: \(names) (got '\(name)')\n", stderr)
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
    do {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (i, seed) in try target.seeds().enumerated() {
            try seed.write(to: URL(fileURLWithPath: dir).appendingPathComponent("seed-\(i + 1)"))
        }
    } catch {
        fputs("cannot write the seeds: \(error)\n", stderr)
        exit(1)
    }
    exit(0)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    do { try target.run(Data(bytes: bytes, count: count)) } catch {
        fputs("finding: \(error)\n", stderr)
        abort()
    }
    return 0
}

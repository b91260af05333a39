// Test support (not API): the `../shared` folder beside the checkout (golden files, real data; in CI, not in a
// user's clone), the trait that skips a test with the reason when a file it needs is not there, and the
// byte-level alphabet used to build a tokenizer for the tiny reference Llama (vocabulary 256 = one per byte).

import Foundation
import Testing

public enum SharedData {
    /// `<repo>/../shared`, found from this file's path (`<repo>/Sources/_TestSupport/…`);
    /// `RLHF_SHARED_DIR` overrides (e.g. when the sources are reached through a symlink).
    public static let root: URL = {
        if let dir = ProcessInfo.processInfo.environment["RLHF_SHARED_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared")
    }()

    public static func url(_ path: String) -> URL { root.appendingPathComponent(path) }

    /// Whether `../shared/<path>` exists.
    public static func has(_ path: String) -> Bool { FileManager.default.fileExists(atPath: url(path).path) }

    /// A test trait: the test runs when every `../shared/<path>` exists, and is otherwise reported as skipped
    /// with the missing paths named (a user's clone has no `../shared`; CI has it).
    public static func needs(_ paths: String...) -> ConditionTrait {
        let missing = paths.filter { !has($0) }
        return .enabled(
            if: missing.isEmpty,
            Comment(
                rawValue: "needs " + missing.map { "../shared/\($0)" }.joined(separator: ", ")
                    + " (the reference files beside the checkout in CI; not in a user's clone)"))
    }

    /// GPT-2's `bytes_to_unicode`: the byte-level token string of each byte value.
    public static let byteTokens: [String] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var scalars = printable
        var extra = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            scalars.append(256 + extra)
            extra += 1
        }
        var out = [String](repeating: "", count: 256)
        for (b, s) in zip(printable, scalars) { out[b] = String(Unicode.Scalar(UInt32(s))!) }
        return out
    }()
}

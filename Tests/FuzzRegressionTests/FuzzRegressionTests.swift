// The fuzz targets in the suite: every seed is accepted by its reader, every saved finding (Findings/<target>/)
// ends in a value or a typed error, and a seeded burst of hostile variants of each seed (truncations, byte flips,
// spliced runs) never crashes, hangs or breaks a property. libFuzzer itself runs in scripts/fuzz.sh.

import Foundation
import Testing
import _FuzzHarness

// Serialized: the targets write their inputs to fixed scratch files.
@Suite(.serialized) struct FuzzRegressionTests {
    static let findings = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Findings")

    @Test(arguments: FuzzTarget.allCases)
    func seedsAreAcceptedAndFindingsStayFixed(_ target: FuzzTarget) throws {
        let seeds = try target.seeds()
        #expect(!seeds.isEmpty)
        for (i, seed) in seeds.enumerated() { #expect(try target.run(seed), "seed \(i + 1) of \(target)") }
        let dir = Self.findings.appendingPathComponent(target.rawValue)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] {
            try target.run(Data(contentsOf: dir.appendingPathComponent(name)))
        }
    }

    /// 300 variants per seed from a fixed generator: the same inputs on every run.
    @Test(arguments: FuzzTarget.allCases)
    func hostileVariantsOfTheSeedsFailCleanly(_ target: FuzzTarget) throws {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(target.rawValue.utf8.count + 1)
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(max(n, 1)))
        }
        for seed in try target.seeds() {
            let bytes = [UInt8](seed)
            for round in 0..<300 {
                var v = bytes
                switch round % 3 {
                case 0: v = Array(v.prefix(next(v.count + 1)))  // truncated
                case 1:  // bytes overwritten, a few of them with boundary values
                    for _ in 0...next(8) where !v.isEmpty {
                        v[next(v.count)] = [0, 0xFF, 0x7F, 0x80, UInt8(next(256))][next(5)]
                    }
                default:  // a run copied over another place
                    if v.count > 2 {
                        let from = next(v.count), to = next(v.count), length = min(next(64), v.count - max(from, to))
                        v.replaceSubrange(to..<(to + length), with: v[from..<(from + length)])
                    }
                }
                try target.run(Data(v))
            }
        }
    }
}

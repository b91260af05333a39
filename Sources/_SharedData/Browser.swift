// Headless Chromium for the tests that check a report renders (Debian package `chromium`; `.ci/run` installs
// it): a screenshot of a page, and how many of its pixels have given colours (decoded by scripts/png-colors.py,
// Python's standard library only). Tests that need it are skipped, by name and with the reason, without it.

import Foundation
import Testing

public enum Browser {
    /// The first of chromium / chromium-browser / google-chrome on PATH.
    public static let path: String? = {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for d in dirs where FileManager.default.isExecutableFile(atPath: "\(d)/\(name)") { return "\(d)/\(name)" }
        }
        return nil
    }()

    public static var needed: ConditionTrait {
        .enabled(
            if: path != nil,
            Comment(rawValue: "needs headless Chromium on PATH (apt-get install chromium; .ci/run installs it)"))
    }

    static func run(_ executable: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Renders `page` to a PNG at `png` (a 1000 × `height` CSS-pixel window at half scale, so the PNG is small
    /// enough for the pure-Python decoder).
    public static func screenshot(_ page: URL, to png: URL, height: Int = 3200) throws {
        guard let path else { throw CocoaError(.executableNotLoadable) }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID())")
        defer { try? FileManager.default.removeItem(at: profile) }
        let r = try run(
            path,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(profile.path)",
                "--window-size=1000,\(height)", "--force-device-scale-factor=0.5", "--screenshot=\(png.path)",
                page.absoluteString,
            ])
        guard r.status == 0, FileManager.default.fileExists(atPath: png.path) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: r.output])
        }
    }

    /// The number of pixels of `png` within 24 (per channel) of each `#rrggbb` colour, and of all non-white ones.
    public static func colourCounts(_ png: URL, _ colours: [String]) throws -> [String: Int] {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/png-colors.py")
        let r = try run("/usr/bin/env", ["python3", script.path, png.path] + colours)
        guard r.status == 0, let object = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Int]
        else { throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: r.output]) }
        return object
    }
}

// Locates ../shared (beside the checkout) and reads golden JSON files.

import Foundation
import Testing

enum Shared {
    /// `<repo>/../shared`, found from this file's path (`<repo>/Tests/ModelsTests/…`).
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared")

    static func url(_ path: String) -> URL { root.appendingPathComponent(path) }

    static func json(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: url(path))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

func floats(_ any: Any?) -> [Float] { (any as? [Any] ?? []).map { Float(($0 as? NSNumber)?.doubleValue ?? .nan) } }
func doubles(_ any: Any?) -> [Double] { (any as? [Any] ?? []).map { ($0 as? NSNumber)?.doubleValue ?? .nan } }

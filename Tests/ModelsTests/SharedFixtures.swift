// Locates ../shared (beside the checkout) and reads golden JSON files.

import Foundation
import Testing
import _SharedData
import _TestSupport

enum Shared {
    static let root = SharedData.root
    static func url(_ path: String) -> URL { SharedData.url(path) }

    static func json(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: url(path))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

func floats(_ any: Any?) -> [Float] { (any as? [Any] ?? []).map { Float(($0 as? NSNumber)?.doubleValue ?? .nan) } }
func doubles(_ any: Any?) -> [Double] { (any as? [Any] ?? []).map { ($0 as? NSNumber)?.doubleValue ?? .nan } }

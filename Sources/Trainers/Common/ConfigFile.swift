// Trainer configs are Codable structs whose defaults live on their properties. A config file (JSON or
// YAML) or `--set key=value` overrides is a partial object decoded over the defaults; unknown keys are
// an error naming the key and the accepted ones (nanoGPT/minGPT refuse unknown keys too).

import Foundation
import ModelFormats
import Yams

public enum ConfigFileError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case syntax(file: String, reason: String)
    case unknownKeys(file: String, keys: [String], accepted: [String])
    case invalidValue(file: String, key: String, reason: String)
    case invalidOverride(String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): "\(file): cannot read the config (\(reason))."
        case let .syntax(file, reason): "\(file): not valid JSON or YAML (\(reason))."
        case let .unknownKeys(file, keys, accepted):
            "\(file): unknown config key(s) \(keys.joined(separator: ", ")). Accepted keys:"
                + " \(accepted.joined(separator: ", "))."
        case let .invalidValue(file, key, reason): "\(file): '\(key)': \(reason)."
        case let .invalidOverride(s): "--set \(s): expected key=value (value as JSON or a plain string)."
        }
    }
}

/// A config that can be decoded partially over its defaults.
public protocol PartialConfig: Codable, Sendable {
    init()
    static var keys: [String] { get }
}

extension PartialConfig {
    /// Decodes `object` (JSON-compatible) over `base` (the defaults unless given), rejecting unknown keys; an
    /// error quotes `base`'s value of the key as the default.
    public static func decode(_ object: [String: Any], source: String, over base: Self = Self()) throws -> Self {
        let unknown = object.keys.filter { !keys.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw ConfigFileError.unknownKeys(file: source, keys: unknown, accepted: keys.sorted())
        }
        let defaults = (try JSONSerialization.jsonObject(with: JSONEncoder().encode(base))) as! [String: Any]
        var merged = defaults
        for (k, v) in object { merged[k] = v }
        do {
            return try JSONDecoder().decode(Self.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch let DecodingError.dataCorrupted(context) where context.codingPath.isEmpty {
            // Foundation reports some mismatches (2.5 for an integer) without a path: find the key by decoding
            // the overrides one at a time over the defaults.
            for key in object.keys.sorted() {
                var one = defaults
                one[key] = object[key]
                if (try? JSONDecoder().decode(Self.self, from: JSONSerialization.data(withJSONObject: one))) == nil {
                    throw ConfigFileError.invalidValue(
                        file: source, key: key, reason: "expected \(kind(of: defaults[key])), got \(object[key]!)")
                }
            }
            throw ConfigFileError.invalidValue(file: source, key: "?", reason: context.debugDescription)
        } catch let DecodingError.typeMismatch(type, context) {
            throw ConfigFileError.invalidValue(
                file: source, key: context.codingPath.map(\.stringValue).joined(separator: "."),
                reason: "expected \(type)")
        } catch let DecodingError.dataCorrupted(context) {
            throw ConfigFileError.invalidValue(
                file: source, key: context.codingPath.map(\.stringValue).joined(separator: "."),
                reason: context.debugDescription)
        }
    }

    /// How a default value reads in an error ("an integer (default 40)").
    static func kind(of value: Any?) -> String {
        guard let value else { return "a value of another type" }
        if let n = value as? NSNumber, !(value is Bool) {
            let type = String(cString: n.objCType)
            return (type == "d" || type == "f" ? "a number" : "an integer") + " (default \(n))"
        }
        return "a value like the default \(value)"
    }

    /// Reads a JSON or YAML file (by content: JSON first, then YAML).
    public static func load(file url: URL) throws -> [String: Any] {
        guard let data = FileContents.read(url) else {
            throw ConfigFileError.unreadable(file: url.path, reason: "no such file or not readable")
        }
        if let json = try? JSONSerialization.jsonObject(with: data) {
            guard let object = json as? [String: Any] else {
                throw ConfigFileError.syntax(file: url.path, reason: "the top level must be an object")
            }
            return object
        }
        do {
            guard let text = String(data: data, encoding: .utf8) else {
                throw ConfigFileError.syntax(file: url.path, reason: "not UTF-8")
            }
            let yaml = try Yams.load(yaml: text)
            guard let object = yaml as? [String: Any] else {
                throw ConfigFileError.syntax(file: url.path, reason: "the top level must be a mapping")
            }
            return object
        } catch let error as ConfigFileError { throw error } catch {
            throw ConfigFileError.syntax(file: url.path, reason: "\(error)")
        }
    }

    /// Parses `key=value` overrides; values are JSON when they parse as JSON, strings otherwise.
    public static func overrides(_ pairs: [String]) throws -> [String: Any] {
        var out: [String: Any] = [:]
        for pair in pairs {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                throw ConfigFileError.invalidOverride(pair)
            }
            let key = String(pair[..<eq]), raw = String(pair[pair.index(after: eq)...])
            out[key] = (try? JSONSerialization.jsonObject(with: Data(raw.utf8), options: .fragmentsAllowed)) ?? raw
        }
        return out
    }
}

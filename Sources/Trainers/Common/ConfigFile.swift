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
        for key in object.keys.sorted() {
            if let d = (object[key] as? Double) ?? (object[key] as? Float).map(Double.init), !d.isFinite {
                throw ConfigFileError.invalidValue(file: source, key: key, reason: "expected a finite number, got \(d)")
            }
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
        let data: Data
        do { data = try FileContents.read(url) } catch {
            throw ConfigFileError.unreadable(file: url.path, reason: error.reason)
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
            let yaml = try YAMLReader.read(text, file: url.path)
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

/// Reads YAML into JSON values (dictionaries with string keys, arrays, strings, numbers, booleans, NSNull)
/// within bounds, because Yams trusts its input: it builds nodes recursively (a file nested thousands deep
/// overflows the stack), force-unwraps a non-scalar mapping key, expands aliases without limit (a "billion
/// laughs" file) and yields dates and binary data that JSON cannot hold.
enum YAMLReader {
    /// Deeper than any config needs; a text whose `nestingBound` exceeds it is refused before Yams sees it.
    static let maxDepth = 64
    /// Nodes after alias expansion.
    static let maxNodes = 1 << 20

    static func read(_ text: String, file: String) throws -> Any {
        let (depth, line) = nestingBound(text)
        guard depth <= maxDepth else {
            throw ConfigFileError.syntax(
                file: file,
                reason: "line \(line): nested too deeply (a YAML config may hold \(maxDepth) levels, counting each"
                    + " '[' or '{' and two per indentation step)")
        }
        guard let node = try Yams.compose(yaml: text) else { return NSNull() }
        var budget = maxNodes
        return try value(node, depth: 0, budget: &budget, file: file)
    }

    private static func value(_ node: Node, depth: Int, budget: inout Int, file: String) throws -> Any {
        budget -= 1
        let line = node.mark.map { "line \($0.line): " } ?? ""
        guard budget >= 0 else {
            throw ConfigFileError.syntax(
                file: file, reason: "\(line)more than \(maxNodes) values once aliases are expanded")
        }
        guard depth <= maxDepth else {
            throw ConfigFileError.syntax(file: file, reason: "\(line)nested deeper than \(maxDepth) levels")
        }
        switch node {
        case .scalar(let scalar):
            guard scalar.style == .plain || scalar.style == .any else { return scalar.string }  // quoted, block
            return try plain(scalar.string, line: line, file: file)
        case .sequence(let sequence):
            return try sequence.map { try value($0, depth: depth + 1, budget: &budget, file: file) }
        case .mapping(let mapping):
            var out: [String: Any] = [:]
            for (key, item) in mapping {
                guard case .scalar(let name) = key else {
                    let line = key.mark.map { "line \($0.line): " } ?? line
                    throw ConfigFileError.syntax(
                        file: file, reason: "\(line)a mapping key must be a plain value, not a list or mapping")
                }
                out[name.string] = try value(item, depth: depth + 1, budget: &budget, file: file)
            }
            return out
        }
    }

    /// A plain scalar as JSON would hold it (YAML 1.2's core schema: null, true/false, decimal integers, floats;
    /// anything else, dates included, stays a string). Resolved here, not by Yams, whose integer constructors trap
    /// on overflow (found by fuzzing: `9999999999999994509:8`, a base-60 integer).
    static func plain(_ text: String, line: String, file: String) throws -> Any {
        switch text {
        case "", "~", "null", "Null", "NULL": return NSNull()
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        case ".inf", ".Inf", ".INF", "+.inf", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN":
            throw ConfigFileError.syntax(file: file, reason: "\(line)'\(text)' is not a finite number")
        default: break
        }
        let body = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
        if !body.isEmpty, body.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            if let n = Int(text) { return n }  // beyond Int: a Double, as JSON readers do
        }
        let numeric = body.utf8.allSatisfy {
            ($0 >= 48 && $0 <= 57) || $0 == 46 || $0 == 101 || $0 == 69 || $0 == 43 || $0 == 45
        }
        if numeric, body.utf8.contains(where: { $0 >= 48 && $0 <= 57 }), let d = Double(text) {
            guard d.isFinite else {
                throw ConfigFileError.syntax(file: file, reason: "\(line)'\(text)' is beyond the range of a number")
            }
            return d
        }
        return text
    }

    /// An upper bound on the nesting of `text` and the line where it is reached, computed without parsing:
    /// every `[` or `{` so far counts as one level (quoted, commented or closed: telling those apart needs the
    /// parser this guards, and a config has a handful of lists), plus the block levels of the line, two per
    /// indentation step (a mapping and the sequence under it may share a column) and one per leading `- ` or
    /// `? ` indicator.
    static func nestingBound(_ text: String) -> (depth: Int, line: Int) {
        var openings = 0, indents: [Int] = []
        var best = (depth: 0, line: 1), lineNumber = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let bytes = Array(line)
            var i = 0, markers = 0
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "\t") { i += 1 }
            let column = i
            while i + 1 < bytes.count, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "?"),
                bytes[i + 1] == UInt8(ascii: " ")
            {
                markers += 1
                i += 2
            }
            let content = i < bytes.count && bytes[i] != UInt8(ascii: "#") && bytes[i] != UInt8(ascii: "\r")
            if content || markers > 0 {
                while let last = indents.last, last >= column { indents.removeLast() }
                indents.append(column)
            }
            openings += bytes.count { $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "{") }
            let depth = openings + 2 * indents.count + markers
            if depth > best.depth { best = (depth, lineNumber) }
        }
        return best
    }
}

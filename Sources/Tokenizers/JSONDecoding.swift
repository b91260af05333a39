// JSON decoding helpers for the Hugging Face tokenizer files: `JSONDecoder` with every
// `DecodingError` turned into a `TokenizerError` that names the file and the field path, and a
// small `JSONValue` for the polymorphic parts. `JSONSerialization` is avoided because on Linux it
// drops a leading U+FEFF from string values, which would corrupt such tokens.

import Foundation

/// Decodes JSON and turns `DecodingError` into `TokenizerError` naming the file and field.
func decodeJSON<T: Decodable>(_ type: T.Type, from data: Data, file: String) throws(TokenizerError)
    -> T
{
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch let error as TokenizerError {
        throw error
    } catch let DecodingError.keyNotFound(key, context) {
        throw .missingField(file: file, field: fieldPath(context.codingPath + [key]))
    } catch let DecodingError.typeMismatch(expected, context) {
        throw .invalidField(
            file: file, field: fieldPath(context.codingPath), expected: describe(expected),
            found: context.debugDescription)
    } catch let DecodingError.valueNotFound(expected, context) {
        throw .invalidField(
            file: file, field: fieldPath(context.codingPath), expected: describe(expected),
            found: "null")
    } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
        throw .invalidField(
            file: file, field: fieldPath(context.codingPath), expected: "a valid value",
            found: context.debugDescription)
    } catch let DecodingError.dataCorrupted(context) {
        let reason = context.underlyingError.map { "\($0)" } ?? context.debugDescription
        throw .invalidJSON(file: file, reason: reason)
    } catch {
        throw .invalidJSON(file: file, reason: "\(error)")
    }
}

/// "model.merges[3]" for a coding path.
private func fieldPath(_ path: [any CodingKey]) -> String {
    var text = ""
    for key in path {
        if let index = key.intValue {
            text += "[\(index)]"
        } else {
            text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
        }
    }
    return text.isEmpty ? "(top level)" : text
}

private func describe(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Int.Type: "an integer"
    case is Double.Type: "a number"
    case is Bool.Type: "true or false"
    case is [Any].Type: "an array"
    default: "\(type)".hasPrefix("Dictionary") ? "an object" : "a \(type)"
    }
}

/// A key for decoding objects with arbitrary keys.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Any JSON value, for the small polymorphic parts (pre-tokenizer, normalizer, decoder).
enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: AnyKey.self) {
            var object: [String: JSONValue] = [:]
            for key in container.allKeys {
                object[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
            }
            self = .object(object)
        } else if var container = try? decoder.unkeyedContainer() {
            var array: [JSONValue] = []
            while !container.isAtEnd { array.append(try container.decode(JSONValue.self)) }
            self = .array(array)
        } else {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Double.self) {
                self = .number(value)
            } else {
                self = .string(try container.decode(String.self))
            }
        }
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var bool: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    var isNull: Bool { self == .null }

    var description: String {
        switch self {
        case .null: "null"
        case .bool(let value): "\(value)"
        case .number(let value):
            value == value.rounded() && abs(value) < 1e15 ? "\(Int(value))" : "\(value)"
        case .string(let value): "\"\(value)\""
        case .array(let values): "[\(values.map(\.description).joined(separator: ", "))]"
        case .object(let object):
            "{" + object.keys.sorted().map { "\"\($0)\": \(object[$0]!)" }.joined(separator: ", ")
                + "}"
        }
    }
}

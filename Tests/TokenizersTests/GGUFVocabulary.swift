// Test-only GGUF v2/v3 metadata reader: just enough of the format (ggml `docs/gguf.md`) to pull
// the `tokenizer.ggml.*` arrays out of the SmolLM2 GGUF, so these tests do not wait on the
// `ModelFormats` reader. Tensor infos and data are never touched.

import Foundation

struct GGUFVocabulary {
    var model: String
    var preTokenizer: String
    var tokens: [String]
    var tokenTypes: [Int32]
    var merges: [String]
    var bosTokenID: Int?
    var eosTokenID: Int?
    var unknownTokenID: Int?
    var padTokenID: Int?
    var chatTemplate: String?

    struct FormatError: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads the tokenizer metadata of a GGUF file.
    static func load(_ url: URL) throws -> GGUFVocabulary {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        return try data.withUnsafeBytes { raw in
            var reader = Reader(bytes: raw, file: url.lastPathComponent)
            guard try reader.u32() == 0x4655_4747 else { throw reader.error("magic is not GGUF") }
            let version = try reader.u32()
            guard version == 2 || version == 3 else { throw reader.error("unsupported version \(version)") }
            _ = try reader.u64()  // tensor count
            let keyCount = try reader.u64()
            var vocabulary = GGUFVocabulary(
                model: "", preTokenizer: "", tokens: [], tokenTypes: [], merges: [])
            for _ in 0..<keyCount {
                let key = try reader.string()
                let type = try reader.u32()
                switch key {
                case "tokenizer.ggml.model": vocabulary.model = try reader.stringValue(type, key)
                case "tokenizer.ggml.pre": vocabulary.preTokenizer = try reader.stringValue(type, key)
                case "tokenizer.chat_template": vocabulary.chatTemplate = try reader.stringValue(type, key)
                case "tokenizer.ggml.tokens": vocabulary.tokens = try reader.stringArray(type, key)
                case "tokenizer.ggml.merges": vocabulary.merges = try reader.stringArray(type, key)
                case "tokenizer.ggml.token_type": vocabulary.tokenTypes = try reader.int32Array(type, key)
                case "tokenizer.ggml.bos_token_id": vocabulary.bosTokenID = try reader.integer(type, key)
                case "tokenizer.ggml.eos_token_id": vocabulary.eosTokenID = try reader.integer(type, key)
                case "tokenizer.ggml.unknown_token_id": vocabulary.unknownTokenID = try reader.integer(type, key)
                case "tokenizer.ggml.padding_token_id": vocabulary.padTokenID = try reader.integer(type, key)
                default: try reader.skipValue(type)
                }
            }
            return vocabulary
        }
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        let file: String
        var offset = 0

        func error(_ message: String) -> FormatError {
            FormatError(description: "\(file): \(message) (at byte \(offset))")
        }

        mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
            guard count >= 0, offset + count <= bytes.count else { throw error("truncated") }
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
        }

        mutating func load<T: FixedWidthInteger>(_: T.Type) throws -> T {
            T(littleEndian: try take(MemoryLayout<T>.size).loadUnaligned(as: T.self))
        }

        mutating func u32() throws -> UInt32 { try load(UInt32.self) }
        mutating func u64() throws -> UInt64 { try load(UInt64.self) }

        mutating func string() throws -> String {
            let count = try u64()
            guard count < 1 << 30 else { throw error("string of \(count) bytes") }
            return String(decoding: try take(Int(count)), as: UTF8.self)
        }

        /// Byte size of a fixed-size value type, nil for strings and arrays.
        func size(of type: UInt32) throws -> Int? {
            switch type {
            case 0, 1, 7: 1
            case 2, 3: 2
            case 4, 5, 6: 4
            case 10, 11, 12: 8
            case 8, 9: nil
            default: throw error("unknown value type \(type)")
            }
        }

        mutating func skipValue(_ type: UInt32) throws {
            if let size = try size(of: type) {
                _ = try take(size)
            } else if type == 8 {
                _ = try string()
            } else {
                let elementType = try u32()
                let count = try u64()
                if let size = try size(of: elementType) {
                    _ = try take(size * Int(count))
                } else {
                    for _ in 0..<count { try skipValue(elementType) }
                }
            }
        }

        mutating func stringValue(_ type: UInt32, _ key: String) throws -> String {
            guard type == 8 else { throw error("\(key) has type \(type), expected string") }
            return try string()
        }

        mutating func integer(_ type: UInt32, _ key: String) throws -> Int {
            switch type {
            case 4: return Int(try load(UInt32.self))
            case 5: return Int(try load(Int32.self))
            case 10: return Int(try load(UInt64.self))
            case 11: return Int(try load(Int64.self))
            default: throw error("\(key) has type \(type), expected an integer")
            }
        }

        mutating func arrayHeader(_ type: UInt32, _ key: String, element: UInt32) throws -> Int {
            guard type == 9 else { throw error("\(key) has type \(type), expected an array") }
            let elementType = try u32()
            guard elementType == element else {
                throw error("\(key) holds type \(elementType), expected \(element)")
            }
            return Int(try u64())
        }

        mutating func stringArray(_ type: UInt32, _ key: String) throws -> [String] {
            let count = try arrayHeader(type, key, element: 8)
            var strings: [String] = []
            strings.reserveCapacity(count)
            for _ in 0..<count { strings.append(try string()) }
            return strings
        }

        mutating func int32Array(_ type: UInt32, _ key: String) throws -> [Int32] {
            let count = try arrayHeader(type, key, element: 5)
            let raw = try take(4 * count)
            return (0..<count).map {
                Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))
            }
        }
    }
}

// JSON Lines (https://jsonlines.org) reading: the file is read in 1 MiB chunks and split at `\n`,
// so a 5 MB line is just a longer buffer, and memory per line is capped by `maxLineBytes`.
// Each line is checked as UTF-8 before parsing (a bad byte is an error naming the line, never
// mojibake). Accepted deviations, all counted in `JSONLStatistics`: a leading UTF-8 byte-order
// mark, `\r\n` line endings, blank or whitespace-only lines, a missing final newline.

import Foundation

/// Counts of what the line reader saw besides records.
public struct JSONLStatistics: Sendable, Equatable, Codable {
    /// Physical lines, blank ones included.
    public var lines = 0
    /// Empty or whitespace-only lines (skipped, never records).
    public var blankLines = 0
    /// Whether a UTF-8 byte-order mark before line 1 was stripped.
    public var hadByteOrderMark = false
    /// Lines that ended in `\r\n` (the `\r` is removed).
    public var crlfLines = 0
    /// Whether the last line ends with `\n`.
    public var endsWithNewline = true

    public init() {}
}

/// Reads a JSONL file line by line and parses each non-blank line as a JSON object.
///
/// ```swift
/// let reader = JSONLReader(contentsOf: url)
/// let stats = try reader.forEachObject { line, result in
///     let object = try result.get()   // or skip on failure
/// }
/// ```
public struct JSONLReader: Sendable {
    enum Source: Sendable {
        case file(URL)
        case data(Data)
    }

    let source: Source
    /// The path (or name) used in errors.
    public let name: String
    /// Longest accepted line in bytes; longer lines are reported (`lineTooLong`) without being
    /// held in memory.
    public let maxLineBytes: Int

    static let chunkSize = 1 << 20

    public init(contentsOf url: URL, maxLineBytes: Int = ReadOptions().maxLineBytes) {
        source = .file(url)
        name = url.path
        self.maxLineBytes = maxLineBytes
    }

    /// Reads in-memory JSONL; `name` stands for the file in errors.
    public init(data: Data, name: String, maxLineBytes: Int = ReadOptions().maxLineBytes) {
        source = .data(data)
        self.name = name
        self.maxLineBytes = maxLineBytes
    }

    /// Calls `body` for every non-blank line, in order, with its 1-based line number and either the
    /// parsed object or the line's error. `body` decides whether an error is fatal by rethrowing.
    ///
    /// - Throws: `DataError` for the whole file (unreadable, a JSON array instead of JSONL) and
    ///   whatever `body` throws.
    /// - Complexity: O(file size); memory O(longest line) up to `maxLineBytes`.
    @discardableResult
    public func forEachObject(
        _ body: (_ line: Int, _ result: Result<JSONObject, DataError>) throws(DataError) -> Void
    ) throws(DataError) -> JSONLStatistics {
        var splitter = LineSplitter(reader: self)
        switch source {
        case .data(let data):
            try splitter.consume(Array(data), body)
        case .file(let url):
            let handle: FileHandle
            do {
                handle = try FileHandle(forReadingFrom: url)
            } catch {
                throw DataError(file: name, problem: .unreadable(reason: Self.reason(error)))
            }
            defer { try? handle.close() }
            while true {
                let chunk: Data?
                do {
                    chunk = try handle.read(upToCount: Self.chunkSize)
                } catch {
                    throw DataError(file: name, problem: .unreadable(reason: Self.reason(error)))
                }
                guard let chunk, !chunk.isEmpty else { break }
                try splitter.consume(Array(chunk), body)
            }
        }
        try splitter.finish(body)
        return splitter.statistics
    }

    private static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if nsError.domain == NSCocoaErrorDomain
            && (nsError.code == NSFileReadNoSuchFileError || nsError.code == NSFileNoSuchFileError)
        {
            return "no such file"
        }
        return nsError.localizedDescription
    }

    /// Parses one line (without its `\n`). `byteOffset` is added to reported columns (a stripped
    /// BOM). Returns nil for a blank line.
    func parseLine(
        _ bytes: UnsafeBufferPointer<UInt8>, number: Int, byteOffset: Int, isUnterminatedLast: Bool,
        isFirstRecord: Bool
    ) throws(DataError) -> Result<JSONObject, DataError>? {
        guard let firstNonBlank = bytes.firstIndex(where: { !Self.isBlank($0) }) else { return nil }
        func failure(_ problem: DataError.Problem) -> Result<JSONObject, DataError> {
            .failure(DataError(file: name, line: number, problem: problem))
        }
        if let bad = UTF8Validation.firstInvalidOffset(bytes) {
            return failure(.invalidUTF8(column: bad + 1 + byteOffset))
        }
        if isFirstRecord && bytes[firstNonBlank] == UInt8(ascii: "[") {
            throw DataError(file: name, line: number, problem: .jsonArrayFile)
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            if let key = error.duplicateKey { return failure(.duplicateKey(key)) }
            return failure(
                .invalidJSON(
                    column: error.offset + 1 + byteOffset, reason: error.reason,
                    atEndOfFile: isUnterminatedLast))
        }
        guard case .object(let object) = value else {
            return failure(.notAnObject(found: value.typeName))
        }
        return .success(object)
    }

    static func isBlank(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0B || byte == 0x0C
    }
}

/// Splits a byte stream into lines and hands each to the reader's parser and the caller's body.
private struct LineSplitter {
    typealias Body = (Int, Result<JSONObject, DataError>) throws(DataError) -> Void

    let reader: JSONLReader
    var statistics = JSONLStatistics()
    /// Bytes of the current, unfinished line.
    var pending: [UInt8] = []
    /// Set while skipping the rest of a line longer than `maxLineBytes`; its length so far.
    var discardedLength: Int?
    var sawAnyByte = false
    var recordLines = 0

    init(reader: JSONLReader) { self.reader = reader }

    mutating func consume(_ chunk: [UInt8], _ body: Body) throws(DataError) {
        guard !chunk.isEmpty else { return }
        sawAnyByte = true
        var start = 0
        while let newline = chunk[start...].firstIndex(of: 0x0A) {
            try append(chunk[start..<newline])
            try endLine(isUnterminatedLast: false, body)
            start = newline + 1
        }
        try append(chunk[start...])
    }

    private mutating func append(_ bytes: ArraySlice<UInt8>) throws(DataError) {
        if let discarded = discardedLength {
            discardedLength = discarded + bytes.count
        } else if pending.count + bytes.count > reader.maxLineBytes {
            discardedLength = pending.count + bytes.count
            pending = []
        } else {
            pending.append(contentsOf: bytes)
        }
    }

    mutating func finish(_ body: Body) throws(DataError) {
        if !pending.isEmpty || discardedLength != nil {
            statistics.endsWithNewline = false
            try endLine(isUnterminatedLast: true, body)
        }
        if !sawAnyByte { statistics.endsWithNewline = true }
    }

    private mutating func endLine(isUnterminatedLast: Bool, _ body: Body) throws(DataError) {
        statistics.lines += 1
        let number = statistics.lines
        defer {
            pending.removeAll(keepingCapacity: pending.count <= JSONLReader.chunkSize)
            discardedLength = nil
        }
        if let length = discardedLength {
            recordLines += 1
            try body(
                number,
                .failure(
                    DataError(
                        file: reader.name, line: number,
                        problem: .lineTooLong(bytes: length, limit: reader.maxLineBytes))))
            return
        }
        if pending.last == 0x0D {
            pending.removeLast()
            statistics.crlfLines += 1
        }
        var offset = 0
        if number == 1 && pending.starts(with: [0xEF, 0xBB, 0xBF]) {
            offset = 3
            statistics.hadByteOrderMark = true
        }
        let isFirstRecord = recordLines == 0
        let reader = self.reader
        let result = try pending.withUnsafeBufferPointer { all throws(DataError) in
            try reader.parseLine(
                UnsafeBufferPointer(rebasing: all[offset...]), number: number, byteOffset: offset,
                isUnterminatedLast: isUnterminatedLast, isFirstRecord: isFirstRecord)
        }
        guard let result else {
            statistics.blankLines += 1
            return
        }
        recordLines += 1
        try body(number, result)
    }
}

/// UTF-8 validation that reports where the first bad byte is (Unicode 15, Table 3-7).
enum UTF8Validation {
    /// 0-based offset of the first byte that starts an ill-formed sequence, or nil if valid.
    static func firstInvalidOffset(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var index = 0
        let count = bytes.count
        while index < count {
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            let length: Int
            var secondRange: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0:
                length = 3
                secondRange = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED:
                length = 3
                secondRange = 0x80...0x9F
            case 0xF0:
                length = 4
                secondRange = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4:
                length = 4
                secondRange = 0x80...0x8F
            default: return index
            }
            guard index + 1 < count, secondRange.contains(bytes[index + 1]) else { return index }
            for next in 2..<length {
                guard index + next < count, (0x80...0xBF).contains(bytes[index + next]) else {
                    return index
                }
            }
            index += length
        }
        return nil
    }
}

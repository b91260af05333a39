// A validated JSONL dataset of one record type: every record in one format, with the line it came
// from, and a report that accounts for every line (records, blank lines, skipped records by
// reason). With `skipInvalid` off (the default) the first invalid record throws; with it on,
// invalid records are skipped and counted, never silently dropped.

import Foundation

/// How a dataset file is read.
public struct ReadOptions: Sendable, Equatable, Codable {
    /// Skip invalid records (and report them in `ReadReport`) instead of throwing at the first.
    public var skipInvalid = false
    /// Ignore keys that the record format does not use (e.g. an `id` column) instead of failing.
    public var allowsUnknownKeys = false
    /// How many messages per reason `ReadReport` keeps (counts are always complete).
    public var maxReportedIssues = 5
    /// Longest accepted line in bytes (64 MiB); longer lines are invalid records.
    public var maxLineBytes = 64 << 20

    public init() {}

    public init(skipInvalid: Bool) { self.skipInvalid = skipInvalid }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case skipInvalid, allowsUnknownKeys, maxReportedIssues, maxLineBytes
    }

    /// Decodes a partial JSON object over the defaults; unknown keys are an error.
    public init(from decoder: any Decoder) throws {
        self.init()
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        skipInvalid = try c.decodeIfPresent(Bool.self, forKey: .skipInvalid) ?? skipInvalid
        allowsUnknownKeys =
            try c.decodeIfPresent(Bool.self, forKey: .allowsUnknownKeys) ?? allowsUnknownKeys
        maxReportedIssues =
            try c.decodeIfPresent(Int.self, forKey: .maxReportedIssues) ?? maxReportedIssues
        maxLineBytes = try c.decodeIfPresent(Int.self, forKey: .maxLineBytes) ?? maxLineBytes
        try validate()
    }

    public func validate() throws(DatasetConfigError) {
        guard maxReportedIssues >= 0 else {
            throw DatasetConfigError(
                field: "maxReportedIssues", value: "\(maxReportedIssues)", expected: ">= 0")
        }
        guard maxLineBytes > 0 else {
            throw DatasetConfigError(
                field: "maxLineBytes", value: "\(maxLineBytes)", expected: "> 0")
        }
    }
}

/// Count and first messages of one kind of skipped record.
public struct IssueSummary: Sendable, Equatable, Codable {
    public var count = 0
    /// Line numbers of the first `ReadOptions.maxReportedIssues` records.
    public var lines: [Int] = []
    /// Their full error messages.
    public var messages: [String] = []
}

/// What reading a file did with every line.
public struct ReadReport: Sendable, Equatable, Codable, CustomStringConvertible {
    public var file: String
    /// The format of the records; nil only when there are none.
    public var format: DatasetFormat?
    /// Valid records returned.
    public var recordsRead = 0
    /// Invalid records skipped (only with `ReadOptions.skipInvalid`).
    public var skipped = 0
    /// Skipped records by reason.
    public var issues: [IssueReason: IssueSummary] = [:]
    /// Physical-line statistics: blank lines, BOM, CRLF, final newline.
    public var lines = JSONLStatistics()

    public var description: String {
        var text = "\(file): \(recordsRead) records"
        if let format { text += " (\(format.name))" }
        text += ", \(skipped) skipped, \(lines.blankLines) blank lines"
        if lines.hadByteOrderMark { text += ", byte-order mark stripped" }
        if lines.crlfLines > 0 { text += ", \(lines.crlfLines) CRLF line endings" }
        for (reason, summary) in issues.sorted(by: { $0.key < $1.key }) {
            text += "\n  \(reason.rawValue): \(summary.count) skipped"
            for message in summary.messages { text += "\n    \(message)" }
            if summary.count > summary.messages.count {
                text += "\n    … and \(summary.count - summary.messages.count) more"
            }
        }
        return text
    }

    mutating func recordIssue(_ error: DataError, limit: Int) {
        skipped += 1
        var summary = issues[error.reason] ?? IssueSummary()
        summary.count += 1
        if summary.messages.count < limit {
            summary.lines.append(error.line ?? 0)
            summary.messages.append(error.description)
        }
        issues[error.reason] = summary
    }
}

/// The validated records of a JSONL file.
///
/// ```swift
/// let sft = try Dataset<SFTExample>(contentsOf: url)                     // throws at first error
/// let pairs = try Dataset<PreferenceExample>(
///     contentsOf: url, options: ReadOptions(skipInvalid: true))
/// print(pairs.report)                                                    // counts, reasons
/// ```
public struct Dataset<Record: DatasetRecord>: Sendable {
    public var records: [Record]
    /// The 1-based line of each record, for messages about it later (encoding, training).
    public var lineNumbers: [Int]
    public var format: DatasetFormat
    public var report: ReadReport

    /// The path (or name) of the source file.
    public var file: String { report.file }
    public var count: Int { records.count }

    /// Reads and validates a JSONL file.
    /// - Throws: `DataError` for an unreadable, empty or non-JSONL file, or (unless
    ///   `options.skipInvalid`) the first invalid record.
    /// - Complexity: O(file size).
    public init(contentsOf url: URL, options: ReadOptions = ReadOptions()) throws(DataError) {
        try self.init(
            reader: JSONLReader(contentsOf: url, maxLineBytes: options.maxLineBytes),
            options: options)
    }

    /// Reads in-memory JSONL; `name` stands for the file in errors.
    public init(data: Data, name: String, options: ReadOptions = ReadOptions()) throws(DataError) {
        try self.init(
            reader: JSONLReader(data: data, name: name, maxLineBytes: options.maxLineBytes),
            options: options)
    }

    init(reader: JSONLReader, options: ReadOptions) throws(DataError) {
        var records: [Record] = []
        var lineNumbers: [Int] = []
        var report = ReadReport(file: reader.name)
        var first: (format: DatasetFormat, line: Int)?
        report.lines = try reader.forEachObject { line, result throws(DataError) in
            do throws(DataError) {
                let object = try result.get()
                let format = Record.format(of: object)
                if let format, let first, format != first.format {
                    throw DataError(
                        file: reader.name, line: line,
                        problem: .formatMismatch(
                            found: format, expected: first.format, firstLine: first.line))
                }
                let record: Record
                do throws(RecordError) {
                    record = try Record.decode(object, options: options)
                } catch {
                    throw error.located(file: reader.name, line: line)
                }
                if first == nil, let format { first = (format, line) }
                records.append(record)
                lineNumbers.append(line)
            } catch {
                guard options.skipInvalid else { throw error }
                report.recordIssue(error, limit: options.maxReportedIssues)
            }
        }
        guard let first, !records.isEmpty else {
            throw DataError(
                file: reader.name,
                problem: .noRecords(blankLines: report.lines.blankLines, skipped: report.skipped))
        }
        report.recordsRead = records.count
        report.format = first.format
        self.records = records
        self.lineNumbers = lineNumbers
        self.format = first.format
        self.report = report
    }

    /// The records at `indices` (in that order), with their line numbers; the report is kept.
    public func subset(_ indices: [Int]) -> Dataset {
        var copy = self
        copy.records = indices.map { records[$0] }
        copy.lineNumbers = indices.map { lineNumbers[$0] }
        return copy
    }
}

/// A coding key for any string, to list the keys a JSON object actually has.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// Throws for keys of the JSON object that `Keys` does not name (configs reject typos).
    func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws {
        let container = try container(keyedBy: AnyCodingKey.self)
        let known = Set(Keys.allCases.map(\.stringValue))
        let unknown = container.allKeys.map(\.stringValue).filter { !known.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: codingPath,
                    debugDescription: "unknown key(s) \(unknown.joined(separator: ", ")); "
                        + "expected \(known.sorted().joined(separator: ", "))"))
        }
    }
}

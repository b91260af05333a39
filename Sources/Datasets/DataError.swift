// Errors for dataset files and their encoding. Every error names the file, the 1-based line,
// the field path inside the record (`rejected[0].content`) and what was expected versus what was
// found, so a user can fix the data without a debugger. The bar is Hugging Face `datasets`, which
// accepts most broken files silently or fails with a 0-based pyarrow row and no field.

import Foundation

/// A problem with a dataset file, a record in it, or the encoding of a record.
///
/// `description` renders `<file>: line <n>: <field>: <problem>`, e.g.
/// `data.jsonl: line 3: rejected[0].content: expected string, got number`.
public struct DataError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file's path as it was given (or a name for in-memory data).
    public var file: String
    /// 1-based line number, nil for problems of the whole file.
    public var line: Int?
    /// Path of the offending field inside the record, e.g. `prompt[0].role`; nil for the record.
    public var field: String?
    public var problem: Problem

    public init(file: String, line: Int? = nil, field: String? = nil, problem: Problem) {
        self.file = file
        self.line = line
        self.field = field
        self.problem = problem
    }

    /// What is wrong.
    public enum Problem: Sendable, Equatable {
        /// The file could not be opened or read.
        case unreadable(reason: String)
        /// The file holds no records: it is empty, holds only blank lines, or every record was
        /// skipped as invalid.
        case noRecords(blankLines: Int, skipped: Int)
        /// The file is one JSON array (a `.json` document) instead of one object per line.
        case jsonArrayFile
        /// A line is longer than `ReadOptions.maxLineBytes`.
        case lineTooLong(bytes: Int, limit: Int)
        /// The line is not valid UTF-8; `column` is the 1-based byte offset of the first bad byte.
        case invalidUTF8(column: Int)
        /// The line is not valid JSON. `atEndOfFile`: it is the last line and has no final
        /// newline, the usual sign of an interrupted write.
        case invalidJSON(column: Int, reason: String, atEndOfFile: Bool)
        /// The line is valid JSON but not an object.
        case notAnObject(found: String)
        /// A required field (`DataError.field`) is absent. `shapes` describes the accepted
        /// record shapes; `unknownKeys` are keys present that no shape uses (a misspelt field).
        case missingField(shapes: String, unknownKeys: [String])
        /// Keys that the record's format does not use (allow with `ReadOptions.allowsUnknownKeys`).
        case unknownKeys([String], allowed: [String])
        /// The same key appears twice in one object.
        case duplicateKey(String)
        /// The field has the wrong JSON type.
        case wrongType(expected: String, found: String)
        /// The field has the right type but an unacceptable value (a role of "robot", "").
        case invalidValue(expected: String, found: String)
        /// The record is valid on its own but uses another format than the file's first record.
        case formatMismatch(found: DatasetFormat, expected: DatasetFormat, firstLine: Int)
        /// The chat template failed to render the record.
        case templateFailed(message: String)
        /// The chat template changed message content (e.g. trimmed it), so the content cannot be
        /// told apart from markup with certainty, and it contains special-token text: encoding it
        /// could forge control tokens.
        case contentNotIsolated(messageIndex: Int)
    }

    public var description: String {
        var parts = [file]
        if let line { parts.append("line \(line)") }
        // A missing field is named inside the problem ("missing field `rejected`").
        if let field, !isMissingField { parts.append(field) }
        parts.append(problemDescription)
        return parts.joined(separator: ": ")
    }

    private var isMissingField: Bool {
        if case .missingField = problem { return true }
        return false
    }

    /// The problem without file and line (and without the field, except for a missing one).
    public var problemDescription: String {
        switch problem {
        case .unreadable(let reason):
            return "cannot read the file (\(reason))"
        case .noRecords(let blankLines, let skipped):
            var text = "no records in file"
            if blankLines > 0 || skipped > 0 {
                text += " (\(blankLines) blank lines, \(skipped) invalid records skipped)"
            }
            return text + "; a JSONL dataset needs at least one JSON object per line"
        case .jsonArrayFile:
            return "the file is a JSON array, but JSON Lines (JSONL) is expected: one JSON object "
                + "per line. Hint: convert it with `jq -c '.[]' in.json > out.jsonl`"
        case .lineTooLong(let bytes, let limit):
            return "line is \(bytes) bytes, more than the \(limit)-byte limit for one JSONL record (a line that long"
                + " is usually a file without line breaks; the limit is ReadOptions.maxLineBytes)"
        case .invalidUTF8(let column):
            return "invalid UTF-8 at byte \(column) of the line; re-encode the file as UTF-8"
        case .invalidJSON(let column, let reason, let atEndOfFile):
            var text = "invalid JSON at column \(column): \(reason)"
            if atEndOfFile {
                text += "; the file ends here without a final newline: was the write interrupted?"
            }
            return text
        case .notAnObject(let found):
            return "expected a JSON object, got \(found)"
        case .missingField(let shapes, let unknownKeys):
            var text = "missing field" + (field.map { " `\($0)`" } ?? "")
            if !unknownKeys.isEmpty {
                text +=
                    "; found unknown key" + (unknownKeys.count > 1 ? "s " : " ")
                    + unknownKeys.map { "`\($0)`" }.joined(separator: ", ")
            }
            return text + "; expected \(shapes)"
        case .unknownKeys(let keys, let allowed):
            return "unknown key" + (keys.count > 1 ? "s " : " ")
                + keys.map { "`\($0)`" }.joined(separator: ", ") + "; expected only "
                + allowed.map { "`\($0)`" }.joined(separator: ", ")
                + " (set ReadOptions.allowsUnknownKeys to ignore extra keys)"
        case .duplicateKey(let key):
            return "duplicate key `\(key)`"
        case .wrongType(let expected, let found):
            return "expected \(expected), got \(found)"
        case .invalidValue(let expected, let found):
            return "expected \(expected), got \(found)"
        case .formatMismatch(let found, let expected, let firstLine):
            return "record is in \(found.name) format, but line \(firstLine) is in "
                + "\(expected.name) format; a file must use one format throughout"
        case .templateFailed(let message):
            return "the chat template failed: \(message)"
        case .contentNotIsolated(let messageIndex):
            return "message \(messageIndex) contains special-token text and the chat template "
                + "changes message content, so it cannot be kept apart from template markup; "
                + "refusing to encode it (remove the special-token text or use another template)"
        }
    }

    /// The category used to group skipped records in `ReadReport`.
    public var reason: IssueReason {
        switch problem {
        case .unreadable, .noRecords, .jsonArrayFile: .file
        case .lineTooLong: .lineTooLong
        case .invalidUTF8: .invalidUTF8
        case .invalidJSON: .invalidJSON
        case .notAnObject: .notAnObject
        case .missingField: .missingField
        case .unknownKeys: .unknownKeys
        case .duplicateKey: .duplicateKey
        case .wrongType: .wrongType
        case .invalidValue: .invalidValue
        case .formatMismatch: .formatMismatch
        case .templateFailed, .contentNotIsolated: .encoding
        }
    }
}

/// Why a record was rejected (or skipped with `ReadOptions.skipInvalid`).
public enum IssueReason: String, Sendable, Codable, CodingKeyRepresentable, CaseIterable,
    Comparable
{
    case file, lineTooLong, invalidUTF8, invalidJSON, notAnObject, missingField, unknownKeys
    case duplicateKey, wrongType, invalidValue, formatMismatch, encoding

    public static func < (lhs: IssueReason, rhs: IssueReason) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A problem at a field of one record, before the reader adds file and line.
public struct RecordError: Error, Sendable, Equatable {
    public var field: String?
    public var problem: DataError.Problem

    public init(field: String?, problem: DataError.Problem) {
        self.field = field
        self.problem = problem
    }

    func located(file: String, line: Int) -> DataError {
        DataError(file: file, line: line, field: field, problem: problem)
    }
}

/// An invalid configuration value (`ReadOptions`, `SFTEncodingConfig`, `DataLoaderConfig`, …).
public struct DatasetConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var value: String
    public var expected: String

    public init(field: String, value: String, expected: String) {
        self.field = field
        self.value = value
        self.expected = expected
    }

    public var description: String { "\(field) is \(value); expected \(expected)" }
}

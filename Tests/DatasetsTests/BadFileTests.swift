// One test per file of shared/data/bad (see shared/data/README.md section 5): the exact error
// (file, line, field, expected vs found), or acceptance with the right counts.

import Datasets
import Foundation
import Testing
import _SharedData

/// Every line number → message of the records a skip-invalid read reported.
private func skippedMessages<Record: DatasetRecord>(_ dataset: Dataset<Record>) -> [Int: String] {
    var messages: [Int: String] = [:]
    for summary in dataset.report.issues.values {
        for (line, message) in zip(summary.lines, summary.messages) { messages[line] = message }
    }
    return messages
}

private func skipAll() -> ReadOptions {
    var options = ReadOptions(skipInvalid: true)
    options.maxReportedIssues = 100
    return options
}

/// The first records of hh_rlhf_helpful_test.jsonl, which bom/crlf/blank_lines copy.
private func firstTestRecords(_ count: Int) throws -> [PreferenceExample] {
    Array(
        try Dataset<PreferenceExample>(contentsOf: Fixtures.data("hh_rlhf_helpful_test.jsonl"))
            .records.prefix(count))
}

@Suite("Bad files", SharedData.needs("data/bad", "data/hh_rlhf_helpful_test.jsonl"))
struct BadFileTests {
    @Test func truncatedLineFailsAtLine3() throws {
        let error = try Fixtures.readError(PreferenceExample.self, "truncated_line.jsonl")
        #expect(error.line == 3)
        #expect(error.file.hasSuffix("truncated_line.jsonl"))
        guard case .invalidJSON(_, let reason, let atEndOfFile) = error.problem else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(reason.contains("unterminated string"))
        #expect(!atEndOfFile)
        #expect(error.description.contains("truncated_line.jsonl: line 3: invalid JSON at column"))

        let skipped = try Dataset<PreferenceExample>(
            contentsOf: Fixtures.bad("truncated_line.jsonl"), options: skipAll())
        #expect(skipped.count == 4)
        #expect(skipped.lineNumbers == [1, 2, 4, 5])
        #expect(skipped.report.skipped == 1)
        #expect(skipped.report.issues[.invalidJSON]?.lines == [3])
    }

    @Test func truncatedEndOfFileIsAnErrorNotTwoRecords() throws {
        let error = try Fixtures.readError(PreferenceExample.self, "truncated_eof.jsonl")
        #expect(error.line == 3)
        guard case .invalidJSON(_, _, let atEndOfFile) = error.problem else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(atEndOfFile)
        #expect(error.description.contains("without a final newline"))

        // Skipping is explicit: two records, and the report says what happened to line 3.
        let skipped = try Dataset<PreferenceExample>(
            contentsOf: Fixtures.bad("truncated_eof.jsonl"), options: ReadOptions(skipInvalid: true)
        )
        #expect(skipped.count == 2)
        #expect(skipped.report.skipped == 1)
        #expect(!skipped.report.lines.endsWithNewline)
        #expect(skipped.report.issues[.invalidJSON]?.lines == [3])
    }

    @Test func wrongTypesNameLineAndField() throws {
        let error = try Fixtures.readError(PreferenceExample.self, "wrong_types.jsonl")
        #expect(error.line == 1)
        #expect(error.field == "prompt")
        #expect(
            error.problem == .wrongType(expected: "a string or a list of messages", found: "number")
        )

        let dataset = try Dataset<PreferenceExample>(
            contentsOf: Fixtures.bad("wrong_types.jsonl"), options: skipAll())
        #expect(dataset.lineNumbers == [8])
        #expect(dataset.report.skipped == 7)
        let messages = skippedMessages(dataset)
        let expected = [
            1: "line 1: prompt: expected a string or a list of messages, got number",
            2: "line 2: chosen: expected a list of messages, like `prompt`, got string",
            3: "line 3: rejected[0].content: expected string, got number",
            4:
                "line 4: prompt[0].role: expected \"system\", \"user\" or \"assistant\", got \"robot\"",
            5: "line 5: rejected: expected a list of messages, like `prompt`, got object",
            6:
                "line 6: prompt[0]: expected a message object {\"role\": …, \"content\": …}, got string",
            7: "line 7: expected a JSON object, got array",
        ]
        for (line, text) in expected {
            let message = try #require(messages[line], "line \(line) not reported")
            #expect(message.hasSuffix("wrong_types.jsonl: " + text))
        }
    }

    @Test func missingRejectedNamesLineAndField() throws {
        let error = try Fixtures.readError(PreferenceExample.self, "missing_rejected.jsonl")
        #expect(error.line == 3)
        #expect(error.field == "rejected")
        #expect(
            error.description.contains("missing_rejected.jsonl: line 3: missing field `rejected`"))
    }

    @Test func emptyPromptsAreErrorsOrCountedSkips() throws {
        let error = try Fixtures.readError(PreferenceExample.self, "empty_prompt.jsonl")
        #expect(error.line == 2)
        #expect(error.field == "prompt")
        #expect(
            error.problem
                == .invalidValue(
                    expected: "a non-empty list of messages", found: "[] (an empty list)"))

        let dataset = try Dataset<PreferenceExample>(
            contentsOf: Fixtures.bad("empty_prompt.jsonl"), options: skipAll())
        #expect(dataset.lineNumbers == [1, 3, 5])
        #expect(dataset.report.skipped == 2)
        #expect(dataset.report.issues[.invalidValue]?.lines == [2, 4])
        let line4 = try #require(skippedMessages(dataset)[4])
        #expect(
            line4.contains("line 4: prompt[0].content: expected non-empty text, got \"\" (empty)"))
    }

    @Test func invalidUTF8IsAnErrorNotMojibake() throws {
        let error = try Fixtures.readError(PreferenceExample.self, "invalid_utf8.jsonl")
        #expect(error.line == 2)
        #expect(error.problem == .invalidUTF8(column: 42))
        #expect(error.description.contains("invalid_utf8.jsonl: line 2: invalid UTF-8"))

        let dataset = try Dataset<PreferenceExample>(
            contentsOf: Fixtures.bad("invalid_utf8.jsonl"), options: skipAll())
        #expect(dataset.lineNumbers == [1, 3, 5])
        #expect(dataset.report.issues[.invalidUTF8]?.lines == [2, 4])
        for case .conversation(let prompt, let chosen, let rejected) in dataset.records {
            for message in prompt + chosen + rejected {
                #expect(!message.content.contains("\u{FFFD}"))
            }
        }
    }

    @Test func hugeLineParses() throws {
        let dataset = try Dataset<PreferenceExample>(contentsOf: Fixtures.bad("huge_line.jsonl"))
        #expect(dataset.count == 3)
        guard case .conversation(_, let chosen, _) = dataset.records[1] else {
            Issue.record("record 2 is not conversational")
            return
        }
        #expect(chosen[0].content.utf8.count > 5_000_000)
        // Over-long records are an encoding matter (truncated with a count), see EncoderTests.
    }

    @Test func hugeLineOverTheLineLimitIsReportedNotBuffered() throws {
        var options = ReadOptions(skipInvalid: true)
        options.maxLineBytes = 1 << 20
        let dataset = try Dataset<PreferenceExample>(
            contentsOf: Fixtures.bad("huge_line.jsonl"), options: options)
        #expect(dataset.lineNumbers == [1, 3])
        #expect(dataset.report.issues[.lineTooLong]?.lines == [2])
    }

    @Test func byteOrderMarkIsStripped() throws {
        let dataset = try Dataset<PreferenceExample>(contentsOf: Fixtures.bad("bom.jsonl"))
        #expect(dataset.count == 3)
        #expect(dataset.report.lines.hadByteOrderMark)
        #expect(dataset.records == (try firstTestRecords(3)))
    }

    @Test func crlfIsAcceptedWithoutCarriageReturnsInContent() throws {
        let dataset = try Dataset<PreferenceExample>(contentsOf: Fixtures.bad("crlf.jsonl"))
        #expect(dataset.count == 3)
        #expect(dataset.report.lines.crlfLines == 3)
        #expect(dataset.records == (try firstTestRecords(3)))
        for case .conversation(let prompt, let chosen, let rejected) in dataset.records {
            #expect((prompt + chosen + rejected).allSatisfy { !$0.content.contains("\r") })
        }
    }

    @Test func mixedFormatsNameTheFirstDifferingLine() throws {
        let error = try Fixtures.readError(PreferenceExample.self, "mixed_formats.jsonl")
        #expect(error.line == 2)
        #expect(
            error.problem
                == .formatMismatch(
                    found: .standardPreference, expected: .conversationalPreference, firstLine: 1))
        #expect(error.description.contains(DatasetFormat.standardPreference.name))
        #expect(error.description.contains(DatasetFormat.conversationalPreference.name))

        let dataset = try Dataset<PreferenceExample>(
            contentsOf: Fixtures.bad("mixed_formats.jsonl"), options: skipAll())
        #expect(dataset.lineNumbers == [1, 3])
        #expect(dataset.report.issues[.formatMismatch]?.lines == [2, 4])
    }

    @Test func emptyFileHasNoRecords() throws {
        let error = try Fixtures.readError(PreferenceExample.self, "empty.jsonl")
        #expect(error.line == nil)
        #expect(error.problem == .noRecords(blankLines: 0, skipped: 0))
        #expect(error.description.contains("empty.jsonl: no records in file"))
        // Skipping cannot turn an empty file into an empty run.
        let skipping = try Fixtures.readError(
            PreferenceExample.self, "empty.jsonl", options: ReadOptions(skipInvalid: true))
        #expect(skipping.problem == .noRecords(blankLines: 0, skipped: 0))
    }

    @Test func jsonArrayExplainsJSONLIsExpected() throws {
        for options in [ReadOptions(), ReadOptions(skipInvalid: true)] {
            let error = try Fixtures.readError(
                PreferenceExample.self, "json_array.jsonl", options: options)
            #expect(error.line == 1)
            #expect(error.problem == .jsonArrayFile)
            #expect(error.description.contains("JSON Lines (JSONL) is expected"))
        }
    }

    @Test func blankLinesAreSkippedAndNotCounted() throws {
        let dataset = try Dataset<PreferenceExample>(contentsOf: Fixtures.bad("blank_lines.jsonl"))
        #expect(dataset.count == 3)
        #expect(dataset.lineNumbers == [1, 3, 5])
        #expect(dataset.report.lines.blankLines == 2)
        #expect(dataset.report.skipped == 0)
        #expect(dataset.records == (try firstTestRecords(3)))
    }

    @Test func sftBadMessagesNameLineAndField() throws {
        let error = try Fixtures.readError(SFTExample.self, "sft_bad_messages.jsonl")
        #expect(error.line == 2)
        #expect(error.field == "messages")
        guard case .missingField(_, let unknownKeys) = error.problem else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(unknownKeys == ["conversation"])
        #expect(
            error.description.contains(
                "line 2: missing field `messages`; found unknown key `conversation`"))

        let dataset = try Dataset<SFTExample>(
            contentsOf: Fixtures.bad("sft_bad_messages.jsonl"), options: skipAll())
        #expect(dataset.lineNumbers == [1, 5])
        #expect(dataset.report.skipped == 3)
        let messages = skippedMessages(dataset)
        #expect(
            messages[3]?.contains("line 3: messages: expected at least one assistant message")
                == true)
        #expect(
            messages[4]?.contains("line 4: messages[1].content: expected non-empty text") == true)
    }
}

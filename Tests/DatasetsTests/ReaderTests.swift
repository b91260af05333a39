// The real datasets load with the documented counts and formats; in-memory edge cases of the line
// reader, the JSON parser and the record formats.

import Datasets
import Foundation
import Testing
import _SharedData

private func read<Record: DatasetRecord>(
    _ type: Record.Type, _ text: String, options: ReadOptions = ReadOptions()
) throws(DataError) -> Dataset<Record> {
    try Dataset<Record>(data: Data(text.utf8), name: "mem.jsonl", options: options)
}

private func error<Record: DatasetRecord>(
    _ type: Record.Type, _ text: String, sourceLocation: SourceLocation = #_sourceLocation
) -> DataError? {
    do {
        _ = try read(type, text)
        Issue.record("accepted: \(text)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

@Suite("Real datasets")
struct RealDatasetTests {
    @Test(SharedData.needs("data/hh_rlhf_helpful_train.jsonl", "data/hh_rlhf_helpful_test.jsonl"))
    func preferenceFilesLoad() throws {
        let train = try Dataset<PreferenceExample>(
            contentsOf: Fixtures.data("hh_rlhf_helpful_train.jsonl"))
        #expect(train.count == 3000)
        #expect(train.format == .conversationalPreference)
        #expect(train.report.skipped == 0 && train.report.lines.blankLines == 0)
        let test = try Dataset<PreferenceExample>(
            contentsOf: Fixtures.data("hh_rlhf_helpful_test.jsonl"))
        #expect(test.count == 500)
        #expect(test.lineNumbers.last == 500)
    }

    @Test(SharedData.needs("data/prompts.jsonl")) func promptsLoad() throws {
        let prompts = try Dataset<PromptExample>(contentsOf: Fixtures.data("prompts.jsonl"))
        #expect(prompts.count == 500)
        #expect(prompts.format == .conversationalPromptOnly)
        for case .conversation(let messages) in prompts.records.map(\.prompt) {
            #expect(messages.count == 1 && messages[0].role == .user)
        }
    }

    @Test(SharedData.needs("data/alpaca_sft.jsonl")) func sftLoads() throws {
        let sft = try Fixtures.alpaca()
        #expect(sft.count == 2630)
        #expect(sft.format == .conversationalLanguageModeling)
        #expect(sft.report.recordsRead == 2630)
    }

    @Test(SharedData.needs("data/hh_rlhf_helpful_test.jsonl")) func preferenceFileReadAsSFTSaysWhatIsMissing() throws {
        let url = try Fixtures.data("hh_rlhf_helpful_test.jsonl")
        do {
            _ = try Dataset<SFTExample>(contentsOf: url)
            Issue.record("accepted")
        } catch {
            #expect(error.line == 1)
            #expect(error.field == "completion")
        }
        // Prompts for rollouts can be taken from a preference file by allowing extra keys.
        var options = ReadOptions()
        options.allowsUnknownKeys = true
        let prompts = try Dataset<PromptExample>(
            contentsOf: Fixtures.data("hh_rlhf_helpful_test.jsonl"), options: options)
        #expect(prompts.count == 500)
    }

    /// A line over the limit is refused with its line number and the limit, without buffering the whole line, from a
    /// file as from memory (the real file case with skipping is in BadFileTests).
    @Test func lineOverTheLimitIsRefusedWithItsNumber() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jsonl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("long.jsonl")
        let record = #"{"prompt": "a", "completion": "b"}"#
        let long = #"{"prompt": ""# + String(repeating: "x", count: 3 << 20) + #"", "completion": "b"}"#
        try Data([record, long, record].joined(separator: "\n").utf8).write(to: url)
        var options = ReadOptions()
        options.maxLineBytes = 1 << 20
        do {
            _ = try Dataset<SFTExample>(contentsOf: url, options: options)
            Issue.record("accepted a line over the limit")
        } catch {
            #expect(error.file == url.path && error.line == 2, "\(error)")
            #expect("\(error)".contains("more than the 1048576-byte limit for one JSONL record"), "\(error)")
        }
        options.skipInvalid = true
        let kept = try Dataset<SFTExample>(contentsOf: url, options: options)
        #expect(kept.lineNumbers == [1, 3] && kept.report.issues[.lineTooLong]?.lines == [2])
    }

    @Test func missingFileIsUnreadable() {
        do {
            _ = try Dataset<SFTExample>(contentsOf: URL(fileURLWithPath: "/nonexistent/x.jsonl"))
            Issue.record("accepted")
        } catch {
            #expect(error.file == "/nonexistent/x.jsonl")
            guard case .unreadable = error.problem else {
                Issue.record("unexpected \(error)")
                return
            }
        }
    }
}

@Suite("Record formats")
struct RecordFormatTests {
    @Test func sftFormats() throws {
        let text = try read(
            SFTExample.self, #"{"completion": " Paris.", "prompt": "Capital of France?"}"#)
        #expect(text.format == .standardPromptCompletion)
        #expect(text.records == [.text(prompt: "Capital of France?", completion: " Paris.")])

        let conversational = try read(
            SFTExample.self,
            #"{"prompt": [{"role": "user", "content": "Hi"}], "#
                + #""completion": [{"content": "Hello", "role": "assistant"}]}"#
        )
        #expect(conversational.format == .conversationalPromptCompletion)
        #expect(
            conversational.records == [
                .conversationalPromptCompletion(
                    prompt: [Message(role: .user, content: "Hi")],
                    completion: [Message(role: .assistant, content: "Hello")])
            ])
    }

    @Test func mismatchedPromptAndCompletionTypes() {
        let error = error(
            SFTExample.self,
            #"{"prompt": "Hi", "completion": [{"role": "assistant", "content": "x"}]}"#)
        #expect(error?.field == "completion")
        #expect(error?.problem == .wrongType(expected: "a string, like `prompt`", found: "array"))
    }

    @Test func implicitPromptPreferenceSplitsTheSharedPrefix() throws {
        let line =
            #"{"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "good"}], "#
            + #""rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "bad"}]}"#
        let dataset = try read(PreferenceExample.self, line)
        #expect(dataset.format == .conversationalImplicitPromptPreference)
        #expect(
            dataset.records == [
                .conversation(
                    prompt: [Message(role: .user, content: "Q")],
                    chosen: [Message(role: .assistant, content: "good")],
                    rejected: [Message(role: .assistant, content: "bad")])
            ])
        let identical =
            #"{"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], "#
            + #""rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}"#
        #expect(error(PreferenceExample.self, identical)?.field == "chosen")
    }

    @Test func standardPreferenceAndPrompts() throws {
        let pair = try read(
            PreferenceExample.self, #"{"prompt": "Q", "chosen": "A", "rejected": "B"}"#)
        #expect(pair.format == .standardPreference)
        let prompt = try read(PromptExample.self, #"{"prompt": "Tell me a joke"}"#)
        #expect(prompt.records == [.text("Tell me a joke")])
        // Math prompts carry their reference answer (a string or a number; TRL's `solution` too).
        let math = try read(
            PromptExample.self,
            "{\"prompt\": \"2+2?\", \"answer\": \"#### 4\"}" + "\n" + #"{"prompt": "3*3?", "answer": 9}"# + "\n"
                + #"{"prompt": "1/2?", "solution": "0.5"}"#)
        #expect(math.records.map(\.answer) == ["#### 4", "9", "0.5"])
        #expect(error(PromptExample.self, #"{"prompt": "x", "answer": [1]}"#)?.field == "answer")
    }

    @Test func unknownKeysAreErrorsUnlessAllowed() throws {
        let line = #"{"id": 7, "messages": [{"role": "assistant", "content": "x", "name": "bot"}]}"#
        #expect(
            error(SFTExample.self, line)?.problem == .unknownKeys(["id"], allowed: ["messages"]))
        var options = ReadOptions()
        options.allowsUnknownKeys = true
        #expect(try read(SFTExample.self, line, options: options).count == 1)
    }

    @Test func keyOrderDoesNotMatter() throws {
        let a = try read(
            PreferenceExample.self, #"{"prompt": "Q", "chosen": "A", "rejected": "B"}"#)
        let b = try read(
            PreferenceExample.self, #"{"rejected": "B", "chosen": "A", "prompt": "Q"}"#)
        #expect(a.records == b.records)
    }
}

@Suite("Line reader and JSON")
struct LineReaderTests {
    @Test(arguments: [
        (#"{"prompt": "a", "prompt": "b"}"#, "duplicate key `prompt`"),
        (#"{"prompt": "a\x"}"#, "invalid escape"),
        (#"{"prompt": "\ud800"}"#, "unpaired UTF-16 surrogate"),
        (#"{"prompt": 01}"#, "expected ',' or '}'"),
        (#"{"prompt": "a"} x"#, "unexpected text after the JSON value"),
        (#"{"prompt": tru}"#, "invalid literal"),
        ("{\"prompt\": \"a\tb\"}", "raw control character"),
    ])
    func malformedJSON(line: String, message: String) {
        let error = error(PromptExample.self, line)
        #expect(error?.line == 1)
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
    }

    @Test func escapesDecode() throws {
        let dataset = try read(PromptExample.self, #"{"prompt": "a\n\t\"\\\/\u00e9\ud83d\ude00"}"#)
        #expect(dataset.records == [.text("a\n\t\"\\/é😀")])
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let line = "{\"prompt\": " + String(repeating: "[", count: 10_000) + "}"
        #expect(error(PromptExample.self, line)?.description.contains("nesting deeper") == true)
    }

    @Test func onlyBlankLinesIsNoRecords() {
        #expect(
            error(PromptExample.self, "\n  \n\t\r\n")?.problem
                == .noRecords(blankLines: 3, skipped: 0))
    }

    @Test func chunkBoundariesDoNotMatter() throws {
        // Lines longer than the reader's 1 MiB chunk, written to a temporary file.
        let long = String(repeating: "word ", count: 300_000)
        let text = "{\"prompt\": \"\(long)\"}\r\n\n{\"prompt\": \"end\"}"
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("datasets-chunks-\(UInt64.random(in: 0...UInt64.max)).jsonl")
        try Data(text.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let dataset = try Dataset<PromptExample>(contentsOf: url)
        #expect(dataset.records == [.text(long), .text("end")])
        #expect(dataset.lineNumbers == [1, 3])
        #expect(!dataset.report.lines.endsWithNewline)
    }
}

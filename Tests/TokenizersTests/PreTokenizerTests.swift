// Word splits of each pre-tokenizer kind on hand-picked strings. Expected splits were produced by
// HF `tokenizers` 0.23 (`pre_tokenizers.Split(Regex(pattern), "isolated")`, with `Digits` first for
// smollm), i.e. by the Oniguruma regexes the scanners reimplement.

import Testing

@testable import Tokenizers

func words(_ text: String, _ kind: PreTokenizerKind) -> [String] {
    var text = text
    return text.withUTF8 { utf8 in
        var buffer = ScalarBuffer()
        var ranges: [Range<Int>] = []
        PreTokenizer(kind: kind).split(utf8, 0..<utf8.count, buffer: &buffer, into: &ranges)
        return ranges.map {
            String(decoding: UnsafeBufferPointer(rebasing: utf8[$0]), as: UTF8.self)
        }
    }
}

@Suite("PreTokenizer")
struct PreTokenizerTests {
    struct Example: Sendable, CustomTestStringConvertible {
        var kind: PreTokenizerKind
        var text: String
        var expected: [String]
        var testDescription: String { "\(kind) \(text.debugDescription)" }
    }

    static let examples: [Example] = [
        .init(kind: .gpt2, text: "Hello world", expected: ["Hello", " world"]),
        .init(
            kind: .gpt2, text: "I'M here, it'S 'ſ ok",
            expected: ["I", "'", "M", " here", ",", " it", "'", "S", " '", "ſ", " ok"]),
        .init(kind: .gpt2, text: "x  12345 yy", expected: ["x", " ", " 12345", " yy"]),
        .init(kind: .gpt2, text: "a\r\n\r\n  b", expected: ["a", "\r\n\r\n ", " b"]),
        .init(kind: .gpt2, text: "  \n\tend ", expected: ["  \n", "\t", "end", " "]),
        .init(kind: .gpt2, text: "(abc) !!x\n\n", expected: ["(", "abc", ")", " !!", "x", "\n\n"]),
        .init(kind: .gpt2, text: "don't 'll 'LL", expected: ["don", "'t", " '", "ll", " '", "LL"]),
        .init(kind: .gpt2, text: "٣½Ⅻ 12", expected: ["٣½Ⅻ", " 12"]),
        .init(
            kind: .gpt2, text: "a\u{A0}b\u{3000} c",
            expected: ["a", "\u{A0}", "b", "\u{3000}", " c"]),
        .init(kind: .gpt2, text: "::\r\nfoo", expected: ["::", "\r", "\n", "foo"]),
        .init(kind: .gpt2, text: "x'ſ y'RE", expected: ["x", "'", "ſ", " y", "'", "RE"]),
        .init(
            kind: .smollm, text: "x  12345 yy",
            expected: ["x", "  ", "1", "2", "3", "4", "5", " yy"]),
        .init(kind: .smollm, text: "٣½Ⅻ 12", expected: ["٣", "½", "Ⅻ", " ", "1", "2"]),
        .init(kind: .smollm, text: "I'M here", expected: ["I", "'", "M", " here"]),
        .init(
            kind: .llama3, text: "I'M here, it'S 'ſ ok",
            expected: ["I", "'M", " here", ",", " it", "'S", " '", "ſ", " ok"]),
        .init(kind: .llama3, text: "x  12345 yy", expected: ["x", " ", " ", "123", "45", " yy"]),
        .init(kind: .llama3, text: "a\r\n\r\n  b", expected: ["a", "\r\n\r\n", " ", " b"]),
        .init(kind: .llama3, text: "  \n\tend ", expected: ["  \n", "\tend", " "]),
        .init(kind: .llama3, text: "(abc) !!x\n\n", expected: ["(abc", ")", " !!", "x", "\n\n"]),
        .init(kind: .llama3, text: "٣½Ⅻ 12", expected: ["٣½Ⅻ", " ", "12"]),
        .init(kind: .llama3, text: "a\u{A0}b", expected: ["a", "\u{A0}b"]),
        .init(kind: .llama3, text: "::\r\nfoo", expected: ["::\r\n", "foo"]),
        .init(kind: .llama3, text: "x'ſ y'RE", expected: ["x", "'ſ", " y", "'RE"]),
        .init(
            kind: .qwen2, text: "x  12345 yy",
            expected: ["x", " ", " ", "1", "2", "3", "4", "5", " yy"]),
        .init(kind: .qwen2, text: "٣½Ⅻ 12", expected: ["٣", "½", "Ⅻ", " ", "1", "2"]),
        .init(kind: .qwen2, text: "(abc) !!x\n\n", expected: ["(abc", ")", " !!", "x", "\n\n"]),
    ]

    @Test(arguments: examples)
    func splitsLikeTheReferenceRegex(_ example: Example) {
        let actual = words(example.text, example.kind)
        #expect(
            actual.map { Array($0.unicodeScalars) }
                == example.expected.map { Array($0.unicodeScalars) },
            "\(actual)")
    }

    @Test(arguments: PreTokenizerKind.allCases)
    func wordsCoverTheTextWithoutGaps(_ kind: PreTokenizerKind) {
        let text = "Mixed: ABC123def456 \u{1F468}\u{200D}\u{1F469} e\u{301}\u{308}\t\r\n  'tis ½  "
        #expect(words(text, kind).joined().unicodeScalars.elementsEqual(text.unicodeScalars))
        #expect(words("", kind).isEmpty)
    }

    @Test func ggufNamesMapToKinds() throws {
        #expect(try PreTokenizerKind(ggufName: "smollm") == .smollm)
        #expect(try PreTokenizerKind(ggufName: "gpt-2") == .gpt2)
        #expect(try PreTokenizerKind(ggufName: "llama-bpe") == .llama3)
        #expect(try PreTokenizerKind(ggufName: "qwen2") == .qwen2)
        #expect(throws: TokenizerError.self) { try PreTokenizerKind(ggufName: "deepseek-coder") }
        do {
            _ = try PreTokenizerKind(ggufName: "deepseek-coder")
        } catch {
            #expect(error.description.contains("'deepseek-coder'"))
            #expect(error.description.contains("tokenizer.ggml.pre"))
        }
    }
}

// The streaming decoder: pieces never contain U+FFFD for valid text split across byte tokens,
// and the pieces always add up to `decode` of all ids.

import Testing
import _SharedData

@testable import Tokenizers

@Suite("StreamingDecoder")
struct StreamingDecoderTests {
    private func stream(_ ids: [Int], _ tokenizer: Tokenizer, skipSpecialTokens: Bool = false)
        -> [String]
    {
        var decoder = StreamingDecoder(tokenizer: tokenizer, skipSpecialTokens: skipSpecialTokens)
        var pieces = ids.map { decoder.decode($0) }
        pieces.append(decoder.finish())
        return pieces
    }

    @Test(
        "Emoji and CJK golden cases stream whole characters", SharedData.needs("reference/tokenizer_golden.json"),
        arguments: [
            "Emoji: 😀 🎉 👍🏽",
            "ZWJ family: 👨‍👩‍👧‍👦 and flag 🇫🇷 and rainbow flag 🏳️‍🌈",
            "日本語のテキストです。",
            "中文字符测试：你好，世界！",
            "한국어 문장입니다",
        ])
    func goldenMultibyteCases(text: String) throws {
        let tokenizer = try Fixtures.smolLM2()
        let golden = try #require(try Fixtures.golden().cases.first { $0.text == text })
        let pieces = stream(golden.ids, tokenizer)
        #expect(!pieces.contains { $0.unicodeScalars.contains("\u{FFFD}") })
        expectSameScalars(pieces.joined(), golden.decoded)
        #expect(pieces.last == "")
        // Some token ends inside a character, so at least one step must hold bytes back.
        let splitsACharacter = golden.ids.map {
            tokenizer.decode([$0]).unicodeScalars.contains("\u{FFFD}")
        }
        if splitsACharacter.contains(true) { #expect(pieces.dropLast().contains("")) }
    }

    @Test(SharedData.needs("reference/tokenizer_golden.json")) func allGoldenCasesConcatenateToDecode() throws {
        let tokenizer = try Fixtures.smolLM2()
        for golden in try Fixtures.golden().cases {
            expectSameScalars(stream(golden.ids, tokenizer).joined(), tokenizer.decode(golden.ids))
            expectSameScalars(
                stream(golden.ids, tokenizer, skipSpecialTokens: true).joined(),
                tokenizer.decode(golden.ids, skipSpecialTokens: true))
        }
    }

    @Test func holdsAnEmojiUntilItsLastByte() throws {
        let tokenizer = try makeTinyTokenizer(merges: [])
        let ids = tokenizer.encode("a😀b", parseSpecialTokens: false)
        #expect(ids.count == 6)  // a, four bytes, b
        #expect(stream(ids, tokenizer) == ["a", "", "", "", "😀", "b", ""])
    }

    @Test func finishFlushesAnIncompleteSequence() throws {
        let tokenizer = try makeTinyTokenizer(merges: [])
        let emoji = tokenizer.encode("😀", parseSpecialTokens: false)
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        #expect(decoder.decode(emoji[0]) == "")
        #expect(decoder.decode(emoji[1]) == "")
        #expect(decoder.hasPendingBytes)
        #expect(decoder.finish() == "\u{FFFD}")
        #expect(!decoder.hasPendingBytes)
    }

    @Test(
        arguments: [
            ([0x61, 0xE2, 0x82], 1),  // "a" + first two bytes of "€": hold the two
            ([0xE2, 0x82, 0xAC], 3),  // complete "€"
            ([0xE0, 0x80], 2),  // E0 80 can never be valid: emit now as U+FFFD U+FFFD
            ([0xED, 0xA0], 2),  // surrogate range: invalid
            ([0xF4, 0x8F], 0),  // valid prefix of U+10FFFx
            ([0xF4, 0x90], 2),  // beyond U+10FFFF: invalid
            ([0x80, 0x80], 2),  // stray continuation bytes
            ([0xF0, 0x9F, 0x98], 0),  // three quarters of 😀
            ([0xC3], 0),
            ([0xFF], 1),
        ] as [([UInt8], Int)])
    func completePrefix(bytes: [UInt8], expected: Int) {
        #expect(StreamingDecoder.completePrefixLength(bytes) == expected)
    }

    @Test func randomByteStreamsMatchWholeDecode() throws {
        let tokenizer = try makeTinyTokenizer(merges: [])
        var random = SplitMix64(seed: 7)
        let interesting: [UInt8] = [
            0x41, 0x80, 0xBF, 0xC2, 0xC3, 0xE0, 0xE2, 0xED, 0xF0, 0xF4, 0xF5, 0xFF, 0x9F, 0xA0,
        ]
        for _ in 0..<500 {
            let bytes = (0..<random.next(below: 12)).map { _ in
                interesting[random.next(below: interesting.count)]
            }
            let ids = bytes.map { tokenizer.byteTokenIDs[Int($0)] }.map(Int.init)
            expectSameScalars(stream(ids, tokenizer).joined(), tokenizer.decode(ids))
        }
    }
}

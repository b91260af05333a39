// The SmolLM2-135M-Instruct tokenizer built from the GGUF against HF transformers' output on the
// 40 strings of `tokenizer_golden.json`: ids, byte-level token strings and decode round trips.

import Foundation
import Testing
import _SharedData

@testable import Tokenizers

@Suite("Golden: SmolLM2 tokenizer vs HF transformers")
struct GoldenTests {
    @Test(SharedData.needs("reference/tokenizer_golden.json")) func goldenFileHasFortyCases() throws {
        let golden = try Fixtures.golden()
        #expect(golden.cases.count == 40)
        #expect(golden.nCases == golden.cases.count)
    }

    @Test(SharedData.needs("reference/tokenizer_golden.json")) func vocabularyAndSpecialIDsMatchTheReference() throws {
        let tokenizer = try Fixtures.smolLM2()
        let golden = try Fixtures.golden()
        #expect(tokenizer.vocabularySize == 49152)
        #expect(tokenizer.preTokenizer == .smollm)
        for (token, id) in golden.specialTokens {
            #expect(tokenizer.id(of: token) == id)
            #expect(tokenizer.isSpecial(id))
        }
        #expect(tokenizer.bosTokenID == 1)
        #expect(tokenizer.eosTokenID == 2)
        #expect(tokenizer.padTokenID == 2)
        #expect(tokenizer.unknownTokenID == 0)
        #expect(tokenizer.chatTemplate?.contains("<|im_start|>") == true)
        #expect(!tokenizer.isSpecial(19556))
    }

    @Test(
        "Encode matches ids and token strings", SharedData.needs("reference/tokenizer_golden.json"), arguments: 0..<40)
    func encodeMatchesGolden(index: Int) throws {
        let tokenizer = try Fixtures.smolLM2()
        let golden = try #require(try Fixtures.golden().cases.dropFirst(index).first)
        let ids = tokenizer.encode(golden.text, parseSpecialTokens: true)
        #expect(ids == golden.ids, "text: \(golden.text.debugDescription)")
        let tokens = tokenizer.tokenStrings(ids)
        #expect(
            tokens.map { Array($0.unicodeScalars) }
                == golden.tokens.map { Array($0.unicodeScalars) })
    }

    @Test(
        "Decode matches the reference and round-trips", SharedData.needs("reference/tokenizer_golden.json"),
        arguments: 0..<40)
    func decodeMatchesGolden(index: Int) throws {
        let tokenizer = try Fixtures.smolLM2()
        let golden = try #require(try Fixtures.golden().cases.dropFirst(index).first)
        let decoded = tokenizer.decode(golden.ids)
        expectSameScalars(decoded, golden.decoded)
        if golden.roundtripExact { expectSameScalars(decoded, golden.text) }
    }

    @Test(
        "Without the digit split, the two listed cases match transformers' GGUF converter",
        SharedData.needs("reference/tokenizer_golden.json"))
    func plainByteLevelCases() throws {
        let plain = try Fixtures.smolLM2PlainByteLevel()
        let cases = try Fixtures.golden().cases
        let listed = cases.filter { $0.idsWithPlainBytelevelPretokenizer != nil }
        #expect(listed.count == 2)
        for golden in listed {
            #expect(
                plain.encode(golden.text, parseSpecialTokens: true)
                    == golden.idsWithPlainBytelevelPretokenizer)
        }
        // On every other case the two pre-tokenizers agree.
        for golden in cases where golden.idsWithPlainBytelevelPretokenizer == nil {
            #expect(
                plain.encode(golden.text, parseSpecialTokens: true) == golden.ids, "\(golden.text)")
        }
    }

    @Test(SharedData.needs("reference/tokenizer_golden.json")) func tokenizerJSONBuiltFromTheGGUFReproducesTheGolden()
        throws
    {
        let vocabulary = try Fixtures.vocabulary()
        var vocab: [String: Int] = [:]
        for (id, token) in vocabulary.tokens.enumerated() { vocab[token] = id }
        let addedTokens: [[String: Any]] = vocabulary.tokenTypes.enumerated().compactMap {
            id, type in
            guard type == TokenType.control.rawValue else { return nil }
            return [
                "id": id, "content": vocabulary.tokens[id], "special": true, "lstrip": false,
                "rstrip": false, "single_word": false, "normalized": false,
            ]
        }
        let json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": addedTokens, "normalizer": NSNull(),
            "pre_tokenizer": [
                "type": "Sequence",
                "pretokenizers": [
                    ["type": "Digits", "individual_digits": true],
                    [
                        "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                        "use_regex": true,
                    ],
                ],
            ],
            "post_processor": [
                "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false,
            ],
            "decoder": [
                "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                "use_regex": true,
            ],
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(),
                "continuing_subword_prefix": NSNull(), "end_of_word_suffix": NSNull(),
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab,
                "merges": vocabulary.merges.map { $0.split(separator: " ").map(String.init) },
            ],
        ]
        let config: [String: Any] = [
            "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
            "unk_token": ["content": "<|endoftext|>", "special": true],
            "chat_template": vocabulary.chatTemplate ?? "",
        ]
        let tokenizer = try Tokenizer(
            tokenizerJSONData: JSONSerialization.data(withJSONObject: json),
            tokenizerConfigData: JSONSerialization.data(withJSONObject: config))
        #expect(tokenizer.vocabularySize == 49152)
        #expect(tokenizer.bosTokenID == 1 && tokenizer.eosTokenID == 2)
        #expect(tokenizer.padTokenID == 2 && tokenizer.unknownTokenID == 0)
        #expect(tokenizer.chatTemplate == vocabulary.chatTemplate)
        for golden in try Fixtures.golden().cases {
            #expect(
                tokenizer.encode(golden.text, parseSpecialTokens: true) == golden.ids,
                "\(golden.text)")
            expectSameScalars(tokenizer.decode(golden.ids), golden.decoded)
        }
    }
}

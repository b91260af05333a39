// Construction from a small hand-made `tokenizer.json` + `tokenizer_config.json` written to a
// temporary directory, and the typed errors for inputs this implementation must refuse.

import Foundation
import Testing

@testable import Tokenizers

/// A tiny byte-level BPE `tokenizer.json`: 256 byte tokens, a few merges, three added tokens.
func tinyTokenizerJSON() -> [String: Any] {
    var vocab: [String: Int] = [:]
    for byte in 0..<256 { vocab[ByteLevel.encode([UInt8(byte)])] = byte + 3 }
    let merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"]
    for merge in merges { vocab[merge.replacingOccurrences(of: " ", with: "")] = vocab.count + 3 }
    return [
        "version": "1.0",
        "added_tokens": [
            [
                "id": 0, "content": "<|end|>", "special": true, "lstrip": false, "rstrip": false,
                "single_word": false, "normalized": false,
            ],
            [
                "id": 1, "content": "<|user|>", "special": true, "lstrip": false, "rstrip": true,
                "single_word": false, "normalized": false,
            ],
            [
                "id": 2, "content": "<note>", "special": false, "lstrip": true, "rstrip": false,
                "single_word": false, "normalized": true,
            ],
        ],
        "normalizer": NSNull(),
        "pre_tokenizer": [
            "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true,
        ],
        "post_processor": [
            "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true,
        ],
        "decoder": [
            "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true,
        ],
        "model": [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(),
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "vocab": vocab,
            "merges": merges,
        ],
    ]
}

/// Writes JSON objects to files in a fresh temporary directory and returns their URLs.
func writeTemporaryJSON(_ objects: [String: Any]) throws -> [String: URL] {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("tokenizers-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var urls: [String: URL] = [:]
    for (name, object) in objects {
        let url = directory.appendingPathComponent(name)
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: url)
        urls[name] = url
    }
    return urls
}

func tokenizerError(_ body: () throws -> Void) -> TokenizerError? {
    do {
        try body()
        return nil
    } catch let error as TokenizerError {
        return error
    } catch {
        return nil
    }
}

@Suite("tokenizer.json")
struct HuggingFaceFileTests {
    @Test func loadsAFileWithAddedTokensAndConfig() throws {
        let urls = try writeTemporaryJSON([
            "tokenizer.json": tinyTokenizerJSON(),
            "tokenizer_config.json": [
                "bos_token": NSNull(), "eos_token": "<|end|>",
                "pad_token": ["content": "<|end|>", "lstrip": false],
                "chat_template": [
                    ["name": "tool_use", "template": "T"], ["name": "default", "template": "D"],
                ],
                "add_bos_token": false,
            ],
        ])
        let tokenizer = try Tokenizer(
            tokenizerJSON: urls["tokenizer.json"]!, tokenizerConfig: urls["tokenizer_config.json"]!)
        #expect(tokenizer.vocabularySize == 3 + 256 + 9)
        #expect(tokenizer.preTokenizer == .gpt2)
        #expect(
            tokenizer.eosTokenID == 0 && tokenizer.padTokenID == 0 && tokenizer.bosTokenID == nil)
        #expect(tokenizer.chatTemplate == "D")
        let ids = tokenizer.encode("hello world", parseSpecialTokens: false)
        #expect(tokenizer.tokenStrings(ids) == ["hello", "Ġworld"])
        #expect(tokenizer.decode(ids) == "hello world")
        #expect(tokenizer.isSpecial(0) && tokenizer.isSpecial(1) && !tokenizer.isSpecial(2))
    }

    @Test func addedTokenOptionsStripWhitespace() throws {
        let tokenizer = try Tokenizer(
            tokenizerJSONData: JSONSerialization.data(withJSONObject: tinyTokenizerJSON()))
        let hello = tokenizer.encode("hello", parseSpecialTokens: true)
        // rstrip: "<|user|>" absorbs the spaces after it.
        #expect(tokenizer.encode("<|user|>   hello", parseSpecialTokens: true) == [1] + hello)
        // lstrip: "<note>" (not special) absorbs the spaces before it, and is matched either way.
        #expect(tokenizer.encode("hello  <note>", parseSpecialTokens: false) == hello + [2])
        #expect(tokenizer.encode("<|end|>", parseSpecialTokens: false).count == 7)
    }

    @Test func mergesMayBePairs() throws {
        var json = tinyTokenizerJSON()
        var model = json["model"] as! [String: Any]
        model["merges"] = (model["merges"] as! [String]).map {
            $0.split(separator: " ").map(String.init)
        }
        json["model"] = model
        let tokenizer = try Tokenizer(
            tokenizerJSONData: JSONSerialization.data(withJSONObject: json))
        #expect(
            tokenizer.tokenStrings(tokenizer.encode("hello", parseSpecialTokens: false)) == [
                "hello"
            ])
    }

    @Test func recognisesEachSupportedPreTokenizer() throws {
        let byteLevel: [String: Any] = [
            "type": "ByteLevel", "add_prefix_space": false, "use_regex": false,
        ]
        let cases: [(Any, PreTokenizerKind)] = [
            (
                [
                    "type": "Sequence",
                    "pretokenizers": [
                        ["type": "Digits", "individual_digits": true],
                        ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true],
                    ],
                ], .smollm
            ),
            (
                [
                    "type": "Sequence",
                    "pretokenizers": [
                        [
                            "type": "Split",
                            "pattern": [
                                "Regex": llama3Pattern
                            ],
                            "behavior": "Isolated", "invert": false,
                        ], byteLevel,
                    ],
                ], .llama3
            ),
            (
                [
                    "type": "Sequence",
                    "pretokenizers": [
                        [
                            "type": "Split",
                            "pattern": [
                                "Regex": qwen2Pattern
                            ],
                            "behavior": "Isolated", "invert": false,
                        ], byteLevel,
                    ],
                ], .qwen2
            ),
        ]
        for (preTokenizer, kind) in cases {
            var json = tinyTokenizerJSON()
            json["pre_tokenizer"] = preTokenizer
            let tokenizer = try Tokenizer(
                tokenizerJSONData: JSONSerialization.data(withJSONObject: json))
            #expect(tokenizer.preTokenizer == kind)
        }
    }

    /// Applies `edit` to the tiny tokenizer.json and returns the construction error.
    private func error(
        config: [String: Any]? = nil, _ edit: (inout [String: Any]) -> Void
    ) throws -> TokenizerError? {
        var json = tinyTokenizerJSON()
        edit(&json)
        let data = try JSONSerialization.data(withJSONObject: json)
        let configData = try config.map { try JSONSerialization.data(withJSONObject: $0) }
        return tokenizerError {
            _ = try Tokenizer(tokenizerJSONData: data, tokenizerConfigData: configData)
        }
    }

    private func editModel(_ json: inout [String: Any], _ edit: (inout [String: Any]) -> Void) {
        var model = json["model"] as! [String: Any]
        edit(&model)
        json["model"] = model
    }

    @Test func missingModelIsNamed() throws {
        let found = try error { $0["model"] = nil }
        #expect(found == .missingField(file: "tokenizer.json", field: "model"))
    }

    @Test func missingVocabIsNamed() throws {
        let found = try error { editModel(&$0) { $0["vocab"] = nil } }
        #expect(found == .missingField(file: "tokenizer.json", field: "model.vocab"))
    }

    @Test func wronglyTypedFieldsAreNamed() throws {
        let vocabError = try error { editModel(&$0) { $0["vocab"] = ["a": "zero"] } }
        guard case .invalidField(let file, let field, _, _)? = vocabError else {
            Issue.record("got \(String(describing: vocabError))")
            return
        }
        #expect(file == "tokenizer.json" && field == "model.vocab.a")
        let mergeError = try error { editModel(&$0) { $0["merges"] = [["a", "b", "c"]] } }
        guard case .invalidField(_, let mergeField, _, _)? = mergeError else {
            Issue.record("got \(String(describing: mergeError))")
            return
        }
        #expect(mergeField == "model.merges[0]")
        let addedError = try error { $0["added_tokens"] = [["content": "<x>"]] }
        #expect(addedError == .missingField(file: "tokenizer.json", field: "added_tokens[0].id"))
    }

    @Test func unsupportedFeaturesAreNamed() throws {
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("normalizer", { $0["normalizer"] = ["type": "NFC"] }),
            ("model.type", { editModel(&$0) { $0["type"] = "WordPiece" } }),
            ("model.byte_fallback", { editModel(&$0) { $0["byte_fallback"] = true } }),
            ("model.dropout", { editModel(&$0) { $0["dropout"] = 0.1 } }),
            (
                "model.continuing_subword_prefix",
                { editModel(&$0) { $0["continuing_subword_prefix"] = "##" } }
            ),
            (
                "pre_tokenizer.type",
                { $0["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁"] }
            ),
            ("pre_tokenizer", { $0["pre_tokenizer"] = NSNull() }),
            (
                "pre_tokenizer.add_prefix_space",
                { $0["pre_tokenizer"] = ["type": "ByteLevel", "add_prefix_space": true] }
            ),
            ("decoder.type", { $0["decoder"] = ["type": "WordPiece"] }),
            (
                "pre_tokenizer.pretokenizers[0].pattern",
                {
                    $0["pre_tokenizer"] = [
                        "type": "Sequence",
                        "pretokenizers": [
                            [
                                "type": "Split", "pattern": ["Regex": "\\s+"],
                                "behavior": "Isolated", "invert": false,
                            ],
                            ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false],
                        ],
                    ]
                }
            ),
        ]
        for (field, edit) in cases {
            let found = try error(edit)
            guard case .unsupportedFeature(let file, let foundField, _, _)? = found else {
                Issue.record("\(field): got \(String(describing: found))")
                continue
            }
            #expect(file == "tokenizer.json")
            #expect(foundField == field)
            #expect(found!.description.contains(field))
        }
    }

    @Test func mergesMustReferenceKnownTokens() throws {
        let found = try error { editModel(&$0) { $0["merges"] = ["h e", "q zz"] } }
        #expect(
            found
                == .mergeReferencesUnknownToken(
                    field: "tokenizer.json: model.merges", index: 1, merge: "q zz", token: "zz"))
        #expect(found!.description.contains("model.merges[1]"))
        let malformed = try error { editModel(&$0) { $0["merges"] = ["he"] } }
        #expect(
            malformed
                == .malformedMerge(field: "tokenizer.json: model.merges", index: 0, merge: "he"))
    }

    @Test func configTokensMustExist() throws {
        let found = try error(config: ["eos_token": "</s>"]) { _ in }
        #expect(
            found
                == .unknownSpecialToken(
                    file: "tokenizer_config.json", field: "eos_token", token: "</s>"))
        let mistyped = try error(config: ["bos_token": 5]) { _ in }
        guard case .invalidField(let file, let field, _, _)? = mistyped else {
            Issue.record("got \(String(describing: mistyped))")
            return
        }
        #expect(file == "tokenizer_config.json" && field == "bos_token")
    }

    @Test func duplicateIDsAndHugeIDsAreRejected() throws {
        let duplicate = try error {
            editModel(&$0) {
                var vocab = $0["vocab"] as! [String: Int]
                vocab["zzz"] = 3
                $0["vocab"] = vocab
            }
        }
        guard case .invalidField(_, _, "a unique id", _)? = duplicate else {
            Issue.record("got \(String(describing: duplicate))")
            return
        }
        let huge = try error { $0["added_tokens"] = [["id": 1 << 40, "content": "<x>"]] }
        guard case .invalidField(_, "added_tokens[0].id", _, _)? = huge else {
            Issue.record("got \(String(describing: huge))")
            return
        }
    }

    @Test func unreadableAndInvalidFiles() throws {
        let missing = URL(fileURLWithPath: "/nonexistent/tokenizer.json")
        let unreadable = tokenizerError { _ = try Tokenizer(tokenizerJSON: missing) }
        guard case .unreadableFile(let path, _)? = unreadable else {
            Issue.record("got \(String(describing: unreadable))")
            return
        }
        #expect(path == missing.path)
        let invalid = tokenizerError {
            _ = try Tokenizer(tokenizerJSONData: Data("{ not json".utf8))
        }
        guard case .invalidJSON(file: "tokenizer.json", _)? = invalid else {
            Issue.record("got \(String(describing: invalid))")
            return
        }
        let array = tokenizerError { _ = try Tokenizer(tokenizerJSONData: Data("[1, 2]".utf8)) }
        #expect(array != nil)
    }
}

@Suite("Raw-array construction errors")
struct RawArrayErrorTests {
    private let bytes = (0..<256).map { ByteLevel.encode([UInt8($0)]) }

    @Test func emptyVocabulary() {
        #expect(throws: TokenizerError.emptyVocabulary(field: "tokenizer.ggml.tokens")) {
            try Tokenizer(tokens: [], merges: [], preTokenizer: .gpt2)
        }
    }

    @Test func tokenTypes() {
        #expect(throws: TokenizerError.tokenTypeCountMismatch(tokens: 256, tokenTypes: 2)) {
            try Tokenizer(tokens: bytes, merges: [], tokenTypes: [1, 1], preTokenizer: .gpt2)
        }
        var types = [Int32](repeating: 1, count: 256)
        types[9] = 7
        #expect(throws: TokenizerError.invalidTokenType(index: 9, value: 7)) {
            try Tokenizer(tokens: bytes, merges: [], tokenTypes: types, preTokenizer: .gpt2)
        }
    }

    @Test func specialIDsOutOfRange() {
        #expect(
            throws: TokenizerError.specialTokenIDOutOfRange(
                role: "eos", id: 300, vocabularySize: 256)
        ) {
            try Tokenizer(
                tokens: bytes, merges: [], specialTokens: SpecialTokenIDs(eos: 300),
                preTokenizer: .gpt2)
        }
    }

    @Test func badMerges() {
        #expect(
            throws: TokenizerError.malformedMerge(
                field: "tokenizer.ggml.merges", index: 0, merge: "ab")
        ) {
            try Tokenizer(tokens: bytes, merges: ["ab"], preTokenizer: .gpt2)
        }
        // Both sides exist but their concatenation is not a token.
        #expect(
            throws: TokenizerError.mergeReferencesUnknownToken(
                field: "tokenizer.ggml.merges", index: 0, merge: "a b", token: "ab")
        ) {
            try Tokenizer(tokens: bytes, merges: ["a b"], preTokenizer: .gpt2)
        }
        let error = TokenizerError.mergeReferencesUnknownToken(
            field: "tokenizer.ggml.merges", index: 0, merge: "a b", token: "ab")
        let expected =
            #"tokenizer.ggml.merges[0] = "a b" needs token "ab", "#
            + "which is not in the vocabulary."
        #expect(error.description == expected)
    }
}

// The tokenizer written as tokenizer.json + tokenizer_config.json, and as GGUF tokenizer.ggml.*
// metadata, reads back as a tokenizer that encodes identically, for every pre-tokenizer kind,
// with merges, special (control) tokens and a non-special added token.

import Foundation
import ModelFormats
import Models
import Testing
import Tokenizers

@testable import ModelExport

@Suite struct TokenizerExportTests {
    static func tokenizer(_ kind: PreTokenizerKind) throws -> Tokenizer {
        let extra = ["Ġt", "he", "Ġthe", "in", "Ġin", "<|im_start|>", "<|im_end|>", "<tool>"]
        let tokens = Tiny.byteScalars.map { String($0) } + extra
        let types = [Int32](repeating: 1, count: 256 + 5) + [3, 3, 4]
        return try Tokenizer(
            tokens: tokens, merges: ["Ġ t", "h e", "Ġt he", "i n", "Ġ in"], tokenTypes: types,
            specialTokens: SpecialTokenIDs(bos: 261, eos: 262, pad: 262, unknown: nil),
            preTokenizer: kind, chatTemplate: Tiny.chatTemplate)
    }

    static let texts = [
        "the then in within", "<|im_start|>user\nthe <tool> 123 4567<|im_end|>",
        "  the  \n\n the  1 2", "I'm 'the' ünï 🙂",
    ]

    static func expectSameEncodings(
        _ a: Tokenizer, _ b: Tokenizer, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for text in texts {
            for special in [true, false] {
                #expect(
                    a.encode(text, parseSpecialTokens: special)
                        == b.encode(text, parseSpecialTokens: special),
                    "\(text) special=\(special)", sourceLocation: sourceLocation)
            }
        }
        #expect(
            a.preTokenizer == b.preTokenizer && a.ignoresMerges == b.ignoresMerges,
            sourceLocation: sourceLocation)
        #expect(
            a.bosTokenID == b.bosTokenID && a.eosTokenID == b.eosTokenID
                && a.padTokenID == b.padTokenID,
            sourceLocation: sourceLocation)
        #expect(
            a.vocabulary == b.vocabulary && a.tokenTypeValues == b.tokenTypeValues,
            sourceLocation: sourceLocation)
        #expect(
            a.mergeRules.map { $0.left + " " + $0.right }
                == b.mergeRules.map { $0.left + " " + $0.right },
            sourceLocation: sourceLocation)
    }

    @Test(arguments: PreTokenizerKind.allCases)
    func huggingFaceFilesRoundTrip(kind: PreTokenizerKind) throws {
        let original = try Self.tokenizer(kind)
        let json = Data(HFTokenizerFiles.tokenizerJSON(original).serialized().utf8)
        let config = Data(
            HFTokenizerFiles.tokenizerConfigJSON(
                original, chatTemplate: Tiny.chatTemplate, maxLength: 64
            )
            .serialized().utf8)
        let restored = try Tokenizer(tokenizerJSONData: json, tokenizerConfigData: config)
        Self.expectSameEncodings(original, restored)
        #expect(restored.chatTemplate == Tiny.chatTemplate)
        #expect(
            original.encode("the <tool>", parseSpecialTokens: false).contains(263),
            "the non-special added token matches")
    }

    @Test(arguments: PreTokenizerKind.allCases)
    func ggufMetadataRoundTrip(kind: PreTokenizerKind) throws {
        let original = try Self.tokenizer(kind)
        let config = LlamaConfig(
            vocabularySize: original.vocabularySize, hiddenSize: 32, intermediateSize: 32,
            layerCount: 1,
            headCount: 2, kvHeadCount: 2)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tokenizer.gguf")
        let metadata =
            [(key: "general.architecture", value: GGUFValue.string("llama"))]
            + GGUFExport.tokenizerMetadata(
                original, model: config, chatTemplate: original.chatTemplate)
        try GGUFWriter.write(metadata: metadata, tensors: [], to: url)
        let restored = try Tokenizer(gguf: try GGUFFile(contentsOf: url))
        Self.expectSameEncodings(original, restored)
        #expect(restored.chatTemplate == Tiny.chatTemplate)
    }

    @Test func jsonStringsAreEscaped() {
        let json = JSON.object([
            ("a\"b", .string("line\nbreak\t\u{1}\\ é")), ("n", .float(1e-5)),
            ("d", .double(10_000)),
        ])
        #expect(
            json.serialized(indent: nil)
                == #"{"a\"b":"line\nbreak\t\u0001\\ é","n":1e-05,"d":10000.0}"#)
    }
}

// Model resolution and checksum. (Chat encoding — golden ids, special-token text in content staying text —
// is tested once, in DatasetsTests, and through the CLI in CLITests.)

import Foundation
import Testing
import _SharedData

@testable import Models

@Suite struct ModelRegistryTests {
    @Test func sha256KnownAnswers() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlhf-sha-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [(String, String)] = [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                String(repeating: "a", count: 1_000_000),
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
            ),
        ]
        for (i, (text, digest)) in cases.enumerated() {
            let f = dir.appendingPathComponent("\(i)")
            try Data(text.utf8).write(to: f)
            #expect(try SHA256.hexDigest(ofFile: f) == digest)
        }
    }

    @Test func unknownModelListsWhatIsAccepted() {
        #expect {
            _ = try ModelRegistry.load("no-such-model")
        } throws: { error in
            "\(error)".contains("smollm2-135m-instruct") && "\(error)".contains(".gguf")
        }
    }

    @Test(SharedData.needs("reference/tiny-llama")) func directoryWithoutTokenizerIsAClearError() {
        #expect {
            _ = try ModelRegistry.load(Shared.url("reference/tiny-llama").path)
        } throws: { error in "\(error)".contains("tokenizer.json") }
    }
}

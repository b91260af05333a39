// Shared helpers for the ModelFormats tests: locating /work/shared-style reference files next to
// the repository, scratch directories, and byte builders for hand-made (often hostile) files.
import Foundation
import Testing
import _SharedData

@testable import ModelFormats

enum TestPaths {
    /// The tiny reference Llama in `../shared` (tests that read it carry `SharedData.needs(TestPaths.tinyLlamaPath)`).
    static let tinyLlamaPath = "reference/tiny-llama"
    static let tinyLlama = SharedData.url(tinyLlamaPath)
}

/// A fresh directory under the system temporary directory, removed by `cleanUp()`.
struct ScratchDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("mf-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    func cleanUp() { try? FileManager.default.removeItem(at: url) }
}

/// Little-endian byte builder for hand-made files.
struct Bytes {
    var data: [UInt8] = []
    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }
    mutating func append(_ value: Float) { append(value.bitPattern) }
    mutating func append(raw: [UInt8]) { data.append(contentsOf: raw) }
    mutating func append(utf8 string: String) { data.append(contentsOf: Array(string.utf8)) }
}

func write(_ bytes: [UInt8], to url: URL) throws {
    try Data(bytes).write(to: url)
}

/// Expects `body` to throw a ``ModelFormatError`` and returns it for further checks.
@discardableResult
func expectModelFormatError(
    _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation
) -> ModelFormatError? {
    do {
        try body()
        Issue.record(
            "expected a ModelFormatError, nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as ModelFormatError {
        #expect(!error.description.isEmpty, sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a ModelFormatError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

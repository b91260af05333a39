// Bounded whole-file reads: metadata files from users (configs, tokenizer.json, chat files) are read with a size
// limit, so a path to a device, an endless pipe or a huge file is refused with its reason instead of exhausting memory.
import Foundation
import Testing

@testable import ModelFormats

@Suite struct FileContentsTests {
    @Test func readsFilesAndPipesWithinTheLimit() throws {
        let dir = try ScratchDirectory()
        defer { dir.cleanUp() }
        try Data("{\"a\": 1}".utf8).write(to: dir.file("c.json"))
        #expect(try FileContents.read(dir.file("c.json")) == Data("{\"a\": 1}".utf8))
        try Data().write(to: dir.file("empty"))
        #expect(try FileContents.read(dir.file("empty")).isEmpty)
        // A FIFO (what `--config <(…)` passes) is read to its end.
        let fifo = dir.file("fifo")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let writer = Thread {
            if let h = FileHandle(forWritingAtPath: fifo.path) { h.write(Data("seed: 3\n".utf8)); try? h.close() }
        }
        writer.start()
        #expect(try FileContents.read(fifo) == Data("seed: 3\n".utf8))
    }

    @Test func refusesWhatItCannotBoundWithTheReason() throws {
        let dir = try ScratchDirectory()
        defer { dir.cleanUp() }
        #expect(throws: FileContents.Failure(reason: "no such file")) { try FileContents.read(dir.file("nope")) }
        #expect(throws: FileContents.Failure(reason: "a directory, expected a file")) { try FileContents.read(dir.url) }
        try Data(count: 100).write(to: dir.file("big"))
        #expect(throws: FileContents.Failure(reason: "100 bytes, more than the 64 this kind of file may hold")) {
            try FileContents.read(dir.file("big"), atMost: 64)
        }
        // An endless device stops one byte past the limit.
        #expect(throws: FileContents.Failure(reason: "more than the 4096 bytes this kind of file may hold")) {
            try FileContents.read(URL(fileURLWithPath: "/dev/zero"), atMost: 4096)
        }
    }
}

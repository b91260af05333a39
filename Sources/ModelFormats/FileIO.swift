// Low-level file access shared by the safetensors and GGUF code: a read-only memory mapping
// (mmap, as the Hugging Face safetensors crate and llama.cpp's llama_mmap do) and an atomic
// writer that fills a temporary file next to the destination, fsyncs it and renames it over the
// destination, so an interrupted save never clobbers a good file.
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A whole file mapped read-only into memory. The mapping lives as long as this object.
///
/// The bytes are immutable, so the object may be shared between threads. As with any mmap,
/// truncating the file on disk while it is mapped makes later reads fault.
final class MappedFile: @unchecked Sendable {
    let url: URL
    /// All bytes of the file (empty for an empty file).
    let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer?

    init(url: URL) throws(ModelFormatError) {
        self.url = url
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotOpen(file: url, reason: Self.errnoText()) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw .cannotOpen(file: url, reason: Self.errnoText())
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .cannotOpen(file: url, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        if size == 0 {
            mapping = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw .cannotOpen(file: url, reason: "mmap: " + Self.errnoText())
        }
        mapping = address
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let mapping { munmap(mapping, bytes.count) }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// Writes a file atomically: bytes go to a hidden temporary file in the destination's
/// directory; `commit()` flushes, fsyncs and renames it over the destination. If the writer is
/// dropped without `commit()`, the temporary file is removed and the destination is untouched.
final class AtomicFileWriter {
    let destination: URL
    private let temporaryPath: String
    private var fd: Int32
    private var buffer: UnsafeMutableRawPointer
    private var buffered = 0
    private let capacity = 1 << 20
    /// Bytes written so far (including buffered ones).
    private(set) var offset = 0

    init(destination: URL) throws(ModelFormatError) {
        self.destination = destination
        let directory = destination.deletingLastPathComponent().path
        let random = UInt64.random(in: 0...UInt64.max)
        temporaryPath =
            directory + "/." + destination.lastPathComponent
            + ".tmp-\(getpid())-\(String(random, radix: 16))"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw .writeFailed(
                file: destination, operation: "creating a temporary file in \(directory)",
                reason: MappedFile.errnoText())
        }
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    }

    deinit {
        buffer.deallocate()
        if fd >= 0 {
            close(fd)
            unlink(temporaryPath)
        }
    }

    /// Appends raw bytes.
    func write(_ bytes: UnsafeRawBufferPointer) throws(ModelFormatError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var done = 0
        while done < bytes.count {
            if buffered == capacity { try flush() }
            let n = min(capacity &- buffered, bytes.count &- done)
            (buffer + buffered).copyMemory(from: base + done, byteCount: n)
            buffered &+= n
            done &+= n
        }
        offset &+= bytes.count
    }

    func write(_ bytes: [UInt8]) throws(ModelFormatError) {
        // Array.withUnsafeBytes is untyped-rethrows; carry the typed error out in a Result.
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(ModelFormatError) in try write(raw) }
        }
        try result.get()
    }

    /// Appends a fixed-width integer or float in little-endian order.
    func writeLittleEndian<T: FixedWidthInteger>(_ value: T) throws(ModelFormatError) {
        var v = value.littleEndian
        try withUnsafeBytes(of: &v) { (raw) throws(ModelFormatError) in try write(raw) }
    }

    /// Appends `count` zero bytes (alignment padding).
    func writeZeros(_ count: Int) throws(ModelFormatError) {
        let zeros = [UInt8](repeating: 0, count: count)
        try write(zeros)
    }

    private func flush() throws(ModelFormatError) {
        var done = 0
        while done < buffered {
            let n = systemWrite(fd, buffer + done, buffered &- done)
            if n < 0 {
                if errno == EINTR { continue }
                throw .writeFailed(
                    file: destination, operation: "write", reason: MappedFile.errnoText())
            }
            done &+= n
        }
        buffered = 0
    }

    /// Flushes, fsyncs and renames the temporary file over the destination.
    func commit() throws(ModelFormatError) {
        try flush()
        guard fsync(fd) == 0 else {
            throw .writeFailed(
                file: destination, operation: "fsync", reason: MappedFile.errnoText())
        }
        close(fd)
        fd = -1
        guard rename(temporaryPath, destination.path) == 0 else {
            let reason = MappedFile.errnoText()
            unlink(temporaryPath)
            throw .writeFailed(file: destination, operation: "rename", reason: reason)
        }
        // Persist the rename itself; failure here leaves a complete file, so it is ignored.
        let directoryFD = open(destination.deletingLastPathComponent().path, O_RDONLY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }
}

/// `write(2)`, reachable from inside `AtomicFileWriter` whose own `write` methods shadow it.
private func systemWrite(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, pointer, count)
}

/// Whole-file reads of metadata (configs, tokenizer.json, adapter_config.json, trainer state, chat files), bounded:
/// a path to `/dev/zero`, a FIFO that never ends or a multi-gigabyte file is refused with its size, not read until
/// memory runs out.
public enum FileContents {
    /// Far above any metadata file (a 256k-token tokenizer.json is about 20 MB).
    public static let defaultLimit = 64 << 20

    /// Why a file could not be read (the caller names the file).
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// The bytes of `url`, at most `limit` of them. An empty regular file gives empty data without going through
    /// Foundation's reader, which leaks its buffer on a file of size 0 (found by the config and PEFT fuzzers).
    public static func read(_ url: URL, atMost limit: Int = defaultLimit) throws(Failure) -> Data {
        var info = stat()
        guard stat(url.path, &info) == 0 else {
            throw Failure(reason: errno == ENOENT ? "no such file" : String(cString: strerror(errno)))
        }
        let kind = info.st_mode & S_IFMT
        guard kind != S_IFDIR else { throw Failure(reason: "a directory, expected a file") }
        if kind == S_IFREG {
            guard Int(info.st_size) <= limit else {
                throw Failure(reason: "\(info.st_size) bytes, more than the \(limit) this kind of file may hold")
            }
            if info.st_size == 0 { return Data() }
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw Failure(reason: "not readable (permissions?)")
            }
            return data
        }
        // A pipe or device (`--config <(…)`): read up to one byte past the limit.
        do {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            var data = Data()
            while data.count <= limit, let chunk = try handle.read(upToCount: 1 << 16), !chunk.isEmpty {
                data.append(chunk)
            }
            guard data.count <= limit else {
                throw Failure(reason: "more than the \(limit) bytes this kind of file may hold")
            }
            return data
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(reason: "not readable (\(error.localizedDescription))")
        }
    }
}

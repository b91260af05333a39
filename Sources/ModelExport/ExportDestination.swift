// Crash-safe writing of export destinations. A directory export is built in a hidden staging
// directory next to the destination (each file written to a temporary name, fsynced and renamed),
// then swapped in with one `renameat2(RENAME_EXCHANGE)` (Linux ≥ 3.15; a rename pair elsewhere)
// and the old contents removed, so readers see either the whole old export or the whole new one.
// Single files go through a temporary file, fsync and rename, as ModelFormats' writers do.
// A destination holding files the exporter would not write is refused unless `overwrite` is set.

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

package enum ExportDestination {
    /// Builds a directory export at `directory` atomically.
    ///
    /// - Parameters:
    ///   - ownedNames: File names this exporter writes; an existing non-empty directory holding
    ///     anything else is refused unless `overwrite`.
    ///   - body: Writes the export's files into the staging directory it is given.
    /// - Throws: `ExportError`; the previous contents of `directory` are untouched on failure.
    static func writeDirectory(
        _ directory: URL, ownedNames: Set<String>, overwrite: Bool, body: (URL) throws -> Void
    ) throws {
        let fm = FileManager.default
        let path = directory.standardizedFileURL.path
        var isDirectory: ObjCBool = false
        let exists = fm.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && !isDirectory.boolValue {
            if !overwrite {
                throw ExportError.destinationConflict(
                    path: path, found: "a file", expected: "a directory")
            }
        } else if exists && !overwrite {
            let contents = (try? fm.contentsOfDirectory(atPath: path)) ?? []
            let unexpected = contents.filter { !ownedNames.contains($0) }.sorted()
            if !unexpected.isEmpty {
                throw ExportError.destinationNotEmpty(path: path, unexpected: unexpected)
            }
        }
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent()
        try makeDirectory(parent, for: path)
        let staging = parent.appendingPathComponent(
            ".\(URL(fileURLWithPath: path).lastPathComponent).export-\(uniqueSuffix())")
        do {
            try fm.createDirectory(at: staging, withIntermediateDirectories: false)
        } catch {
            throw ExportError.writeFailed(
                path: path, operation: "creating a staging directory in \(parent.path)",
                reason: reason(error))
        }
        defer { try? fm.removeItem(at: staging) }
        do {
            try body(staging)
        } catch let error as ExportError {
            throw error
        } catch {
            throw ExportError.writeFailed(
                path: path, operation: "writing the export", reason: reason(error))
        }
        syncPath(staging.path)
        try install(staging: staging.path, at: path, replacing: exists)
        syncPath(parent.path)
    }

    /// Checks a single-file destination: refuses a directory, and an existing file that
    /// `looksLikeExport` rejects unless `overwrite`. Creates the parent directory.
    static func prepareFile(
        _ file: URL, overwrite: Bool, expected: String, looksLikeExport: (URL) -> Bool
    ) throws {
        let path = file.standardizedFileURL.path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue {
                throw ExportError.destinationConflict(
                    path: path, found: "a directory", expected: expected)
            }
            if !overwrite && !looksLikeExport(file) {
                throw ExportError.destinationConflict(
                    path: path, found: "a file that is not \(expected)", expected: expected)
            }
        }
        try makeDirectory(file.deletingLastPathComponent(), for: path)
    }

    /// Writes `data` to `file` through a temporary file in the same directory, fsync and rename.
    static func writeFile(_ data: Data, to file: URL) throws {
        let path = file.path
        let temporary = file.deletingLastPathComponent().appendingPathComponent(
            ".\(file.lastPathComponent).tmp-\(uniqueSuffix())"
        ).path
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ExportError.writeFailed(
                path: path, operation: "creating a temporary file", reason: errnoText())
        }
        var failure: String?
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "write: " + errnoText()
                    return
                }
                done += n
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = "fsync: " + errnoText() }
        close(fd)
        if failure == nil && rename(temporary, path) != 0 { failure = "rename: " + errnoText() }
        if let failure {
            unlink(temporary)
            throw ExportError.writeFailed(path: path, operation: "writing", reason: failure)
        }
    }

    /// Writes a JSON document (2-space indent, trailing newline).
    static func writeJSON(_ json: JSON, to file: URL) throws {
        try writeFile(Data((json.serialized() + "\n").utf8), to: file)
    }

    // MARK: - Helpers

    private static func makeDirectory(_ directory: URL, for path: String) throws {
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true)
        } catch {
            throw ExportError.writeFailed(
                path: path, operation: "creating the parent directory \(directory.path)",
                reason: reason(error))
        }
    }

    /// Moves the finished staging directory to `path`, swapping out an existing one atomically (the previous
    /// contents end up in `staging`, which the caller removes). Checkpoints are installed the same way.
    package static func install(
        staging: String, at path: String, replacing: Bool, allowsExchange: Bool = true
    ) throws {
        if !replacing {
            guard rename(staging, path) == 0 else {
                throw ExportError.writeFailed(
                    path: path, operation: "renaming the staging directory", reason: errnoText())
            }
            return
        }
        if allowsExchange, let exchange = renameExchange,
            exchange(AT_FDCWD, staging, AT_FDCWD, path, 2 /* RENAME_EXCHANGE */) == 0
        {
            return  // `staging` now holds the old contents; the caller's defer removes it.
        }
        // No atomic exchange (older kernel, other OS, some file systems): a rename pair.
        let destination = URL(fileURLWithPath: path)
        let backupURL = destination.deletingLastPathComponent()
            .appendingPathComponent(".\(destination.lastPathComponent).old-\(uniqueSuffix())")
        let backup = backupURL.path
        guard rename(path, backup) == 0 else {
            throw ExportError.writeFailed(
                path: path, operation: "moving the previous export aside", reason: errnoText())
        }
        guard rename(staging, path) == 0 else {
            let failure = errnoText()
            _ = rename(backup, path)
            throw ExportError.writeFailed(
                path: path, operation: "renaming the staging directory", reason: failure)
        }
        try? FileManager.default.removeItem(at: backupURL)
    }

    private typealias RenameAt2 =
        @convention(c) (Int32, UnsafePointer<CChar>?, Int32, UnsafePointer<CChar>?, UInt32) -> Int32

    /// glibc's `renameat2`, looked up at run time (Swift's Glibc module does not declare it).
    private static let renameExchange: RenameAt2? = {
        #if os(Linux)
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else {
                return nil
            }
            return unsafeBitCast(symbol, to: RenameAt2.self)
        #else
            return nil
        #endif
    }()

    private static func syncPath(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    static func uniqueSuffix() -> String {
        "\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    private static func reason(_ error: any Error) -> String {
        String(describing: error)
    }
}

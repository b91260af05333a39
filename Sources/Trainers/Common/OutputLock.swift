// One run per output directory: an exclusive advisory lock (flock) on `<out>/.lock`, held while the run lives.
// The kernel drops it when the process ends however it ends (SIGKILL included), so a killed run never leaves a
// stale lock behind; the file itself stays and only records the holder's pid for the error message.

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

public enum OutputLockError: Error, CustomStringConvertible, Equatable {
    case inUse(directory: String, holder: String)
    case cannotLock(file: String, reason: String)

    public var description: String {
        switch self {
        case let .inUse(directory, holder):
            "\(directory) is in use by another run (\(holder)). Hint: wait for it to finish, or give this run "
                + "another output directory; two runs writing one directory would corrupt its checkpoints."
        case let .cannotLock(file, reason): "\(file): cannot take the run lock (\(reason))."
        }
    }
}

public final class OutputLock: @unchecked Sendable {
    public static let fileName = ".lock"
    let descriptor: Int32
    public let url: URL

    /// Takes the lock of `directory` (created if missing), or throws `OutputLockError.inUse` naming the holder.
    public init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        url = directory.appendingPathComponent(Self.fileName)
        let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw OutputLockError.cannotLock(file: url.path, reason: String(cString: strerror(errno)))
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            guard code == EWOULDBLOCK else {
                throw OutputLockError.cannotLock(file: url.path, reason: String(cString: strerror(code)))
            }
            let pid = (try? String(contentsOf: url, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            throw OutputLockError.inUse(
                directory: directory.path, holder: pid.map { $0.isEmpty ? "pid unknown" : "pid \($0)" } ?? "pid unknown"
            )
        }
        descriptor = fd
        // The holder's pid, for the message another run gets (the lock itself is the flock, not this text).
        let text = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 { _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
    }

    deinit { close(descriptor) }  // closing the descriptor releases the flock
}

// The processes of one data-parallel run and the collectives the trainers need. A run started by `mpirun -np N`
// talks through Open MPI, loaded at run time (`OpenMPI`), so building and running without MPI installed costs
// nothing; a plain start is one process (`SingleProcess`), whose collectives are no-ops.

import Foundation

public enum CommunicatorError: Error, CustomStringConvertible, Equatable {
    case unavailable(String)
    case failed(operation: String, reason: String)
    case mismatch(String)

    public var description: String {
        switch self {
        case let .unavailable(reason): "started by mpirun, but MPI cannot be used: \(reason)"
        case let .failed(operation, reason): "\(operation) failed across the ranks: \(reason)"
        case let .mismatch(what): "the ranks disagree: \(what)"
        }
    }
}

/// The processes of a run. Every rank calls each collective in the same order with buffers of the same size.
public protocol Communicator: AnyObject, Sendable {
    /// This process's index, 0..<size; rank 0 writes checkpoints, metrics and the final model.
    var rank: Int { get }
    var size: Int { get }
    /// Replaces each element of `buffer` with its sum over the ranks.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws
    /// Replaces each element of `buffer` with its maximum over the ranks.
    func allReduceMax(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws
    /// Ends every rank's process (used when one rank fails, so the others do not wait forever in a collective).
    func abort(code: Int32) -> Never
}

extension Communicator {
    public var isMain: Bool { rank == 0 }

    public func allReduceSum(_ values: inout [Double]) throws {
        let count = values.count
        try values.withUnsafeMutableBufferPointer { try allReduceSum($0.baseAddress!, count: count) }
    }

    /// `value`'s maximum over the ranks.
    public func allReduceMax(_ value: Double) throws -> Double {
        var v = value
        try allReduceMax(&v, count: 1)
        return v
    }

    /// Every rank's rows in one list: rank r passes the rows it computed, keyed by their index in 0..<`count`
    /// (each index owned by exactly one rank), and gets all `count` back, bit for bit (each element is summed with
    /// zeros only). Two all-reduces: the lengths, then the values.
    public func gatherRows(_ owned: [Int: [Double]], count: Int) throws -> [[Double]] {
        guard size > 1 else { return (0..<count).map { owned[$0] ?? [] } }
        var lengths = [Double](repeating: 0, count: count)
        for (i, row) in owned { lengths[i] = Double(row.count) }
        try allReduceSum(&lengths)
        var offsets = [0]
        for n in lengths { offsets.append(offsets.last! + Int(n)) }
        var flat = [Double](repeating: 0, count: offsets[count])
        for (i, row) in owned { flat.replaceSubrange(offsets[i]..<offsets[i + 1], with: row) }
        try allReduceSum(&flat)
        return (0..<count).map { Array(flat[offsets[$0]..<offsets[$0 + 1]]) }
    }

    /// `count` rows computed in chunks of `chunk` rows, chunk c by rank c mod size, and gathered: every rank gets
    /// all of them, each chunk computed whole as one process computes it (`compute` gets the chunk's row range).
    public func shareRows(count: Int, chunk: Int, _ compute: (Range<Int>) throws -> [[Double]]) throws -> [[Double]] {
        var owned: [Int: [Double]] = [:]
        for (c, start) in stride(from: 0, to: count, by: chunk).enumerated() where c % size == rank {
            let range = start..<min(start + chunk, count)
            for (j, row) in try compute(range).enumerated() { owned[start + j] = row }
        }
        return try gatherRows(owned, count: count)
    }

    /// Throws unless every rank passed the same `value` (a step count, a fingerprint): the sums of the values and of
    /// the squares of their low 20 bits both match N copies only if all are equal (every term exact in a Double).
    public func expectSame(_ value: UInt32, _ what: @autoclosure () -> String) throws {
        guard size > 1 else { return }
        let low = Double(value & 0xF_FFFF)
        var v = [Double(value), low * low]
        try allReduceSum(&v)
        let n = Double(size)
        guard v[0] == n * Double(value), v[1] == n * low * low else { throw CommunicatorError.mismatch(what()) }
    }
}

/// One process: nothing to exchange.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {}
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {}
    public func allReduceMax(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {}
    public func abort(code: Int32) -> Never { exit(code) }
}

public enum World {
    /// How many processes the launcher started, from its environment (Open MPI, PMIx, MPICH/Slurm PMI); 1 when
    /// started directly.
    public static var launchedSize: Int { launcher(["OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"]) ?? 1 }

    /// The run's processes: Open MPI when launched as several ranks, else one process. Resolved once; a launch
    /// under mpirun whose MPI library cannot be loaded is an error, not a silent single-process run (each rank would
    /// train alone and overwrite the same outputs).
    public static func current() throws -> any Communicator {
        try cached.get()
    }

    /// This process's rank from the launcher's environment, without starting MPI (0 when started directly).
    public static var launchedRank: Int { launcher(["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"]) ?? 0 }

    /// The first of `keys` the launcher set, as an integer.
    private static func launcher(_ keys: [String]) -> Int? {
        let env = ProcessInfo.processInfo.environment
        return keys.lazy.compactMap { env[$0].flatMap(Int.init) }.first
    }

    /// The communicator if `current()` has started it, without starting it (an error path ending every rank).
    public static var started: (any Communicator)? { startedCommunicator }

    nonisolated(unsafe) private static var startedCommunicator: (any Communicator)?

    private static let cached: Result<any Communicator, CommunicatorError> = {
        guard launchedSize > 1 else { return .success(SingleProcess()) }
        do {
            let mpi = try OpenMPI()
            startedCommunicator = mpi
            return .success(mpi)
        } catch let error as CommunicatorError {
            return .failure(error)
        } catch {
            return .failure(.unavailable("\(error)"))
        }
    }()
}

/// Which of a step's micro-batches a rank computes: index `i` belongs to rank `i % size`.
public struct Shard: Sendable, Equatable {
    public let rank: Int
    public let size: Int
    public init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
    }
    public static let whole = Shard(rank: 0, size: 1)
    public func owns(_ index: Int) -> Bool { index % size == rank }
}

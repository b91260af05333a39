// Open MPI through dlopen: the C API's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, …) are addresses of global
// objects in libmpi (`ompi_mpi_comm_world`, …), so a handful of dlsym calls give the whole binding without a
// build-time dependency. Open MPI only: MPICH encodes handles as integers (its ABI is another binding).

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

public final class OpenMPI: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int

    private typealias Handle = UnsafeMutableRawPointer
    private typealias InitThread =
        @convention(c) (
            UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?,
            Int32, UnsafeMutablePointer<Int32>
        ) -> Int32
    private typealias CommQuery = @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    private typealias AllReduce =
        @convention(c) (
            UnsafeRawPointer?, UnsafeMutableRawPointer, Int32, Handle, Handle, Handle
        ) -> Int32
    private typealias SetErrorHandler = @convention(c) (Handle, Handle) -> Int32
    private typealias ErrorString =
        @convention(c) (Int32, UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>)
        -> Int32
    private typealias Abort = @convention(c) (Handle, Int32) -> Int32
    private typealias Finalize = @convention(c) () -> Int32

    private let allReduce: AllReduce
    private let errorString: ErrorString
    private let abortCall: Abort
    private let world: Handle, float: Handle, double: Handle, sum: Handle, maximum: Handle

    /// `MPI_IN_PLACE` in Open MPI's mpi.h.
    private static var inPlace: UnsafeRawPointer? { UnsafeRawPointer(bitPattern: 1) }
    /// MPI_THREAD_SERIALIZED: only one thread calls MPI at a time (the training loop's).
    private static let threadSerialized: Int32 = 2
    /// Elements per MPI call (its counts are 32-bit).
    private static let chunk = 1 << 28

    init() throws {
        guard let lib = dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL) ?? dlopen("libmpi.so", RTLD_NOW | RTLD_GLOBAL)
        else {
            throw CommunicatorError.unavailable(
                "libmpi.so.40 not found (\(String(cString: dlerror()))). Install Open MPI (Debian: apt-get install"
                    + " openmpi-bin libopenmpi-dev)")
        }
        func symbol<T>(_ name: String, as: T.Type) throws -> T {
            guard let p = dlsym(lib, name) else {
                throw CommunicatorError.unavailable("\(name) missing from libmpi (Open MPI 4 or 5 is needed)")
            }
            return unsafeBitCast(p, to: T.self)
        }
        func object(_ name: String) throws -> Handle {
            guard let p = dlsym(lib, name) else {
                throw CommunicatorError.unavailable("\(name) missing from libmpi (an MPI other than Open MPI?)")
            }
            return p
        }
        world = try object("ompi_mpi_comm_world")
        float = try object("ompi_mpi_float")
        double = try object("ompi_mpi_double")
        sum = try object("ompi_mpi_op_sum")
        maximum = try object("ompi_mpi_op_max")
        allReduce = try symbol("MPI_Allreduce", as: AllReduce.self)
        errorString = try symbol("MPI_Error_string", as: ErrorString.self)
        abortCall = try symbol("MPI_Abort", as: Abort.self)
        var provided: Int32 = 0
        guard try symbol("MPI_Init_thread", as: InitThread.self)(nil, nil, Self.threadSerialized, &provided) == 0
        else { throw CommunicatorError.unavailable("MPI_Init_thread failed") }
        // Errors come back as codes (and become Swift errors) instead of MPI's default of aborting without a word.
        _ = try symbol("MPI_Comm_set_errhandler", as: SetErrorHandler.self)(world, try object("ompi_mpi_errors_return"))
        var r: Int32 = 0, s: Int32 = 0
        _ = try symbol("MPI_Comm_rank", as: CommQuery.self)(world, &r)
        _ = try symbol("MPI_Comm_size", as: CommQuery.self)(world, &s)
        rank = Int(r)
        size = Int(s)
        let finalize = try symbol("MPI_Finalize", as: Finalize.self)
        Self.finalizeAtExit = finalize
        atexit { _ = OpenMPI.finalizeAtExit?() }
    }

    nonisolated(unsafe) private static var finalizeAtExit: Finalize?

    private func check(_ code: Int32, _ operation: String) throws {
        guard code != 0 else { return }
        var text = [CChar](repeating: 0, count: 512), length: Int32 = 0
        _ = errorString(code, &text, &length)
        let bytes = text.prefix(Int(max(0, min(length, 512)))).map { UInt8(bitPattern: $0) }
        throw CommunicatorError.failed(operation: operation, reason: String(decoding: bytes, as: UTF8.self))
    }

    private func reduce(
        _ buffer: UnsafeMutableRawPointer, count: Int, stride: Int, type: Handle, op: Handle? = nil
    ) throws {
        var start = 0
        while start < count {
            let n = min(Self.chunk, count - start)
            try check(
                allReduce(Self.inPlace, buffer + start * stride, Int32(n), type, op ?? sum, world), "MPI_Allreduce")
            start += n
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        try reduce(UnsafeMutableRawPointer(buffer), count: count, stride: 4, type: float)
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {
        try reduce(UnsafeMutableRawPointer(buffer), count: count, stride: 8, type: double)
    }

    public func allReduceMax(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {
        try reduce(UnsafeMutableRawPointer(buffer), count: count, stride: 8, type: double, op: maximum)
    }

    public func abort(code: Int32) -> Never {
        _ = abortCall(world, code)
        exit(code)
    }
}

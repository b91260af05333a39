// A persistent spin-then-park thread pool for per-op parallelism on few cores.
// Design measured in shared/anchors/swift-compute.md §3: the caller runs chunk 0 and each helper thread
// one further chunk (a helper that has not started its chunk when the caller is done loses it to the
// caller, so a descheduled vCPU never stalls the barrier); helpers spin on an atomic generation counter
// (with `pause`) for a short window after each job, then park on a semaphore (Dekker-style `sleeping`
// flag so a wake-up cannot be lost).
// Waking a parked thread costs 25–50 µs on the target VM, so spinning helpers make 2-thread element-wise
// ops pay off from ~0.5 µs of work. A spinning helper halves OpenBLAS throughput, so every BLAS call
// parks the pool first (`park()`), letting OpenBLAS own the cores during GEMMs.

import Foundation
import Synchronization
import _CKernels

public final class ThreadPool: @unchecked Sendable {
    /// The process-wide pool: one helper per extra core (1 on a 2-core machine).
    /// `RLHF_NUM_THREADS` overrides the total thread count (1 = no helpers).
    public static let shared: ThreadPool = {
        let env = ProcessInfo.processInfo.environment["RLHF_NUM_THREADS"].flatMap(Int.init)
        let total = max(1, env ?? availableCores)
        return ThreadPool(helpers: total - 1)
    }()

    /// The cores this process may run on: its CPU affinity mask on Linux (what `taskset` or `mpirun --bind-to core`
    /// gives each rank; Foundation's `activeProcessorCount` ignores it), else the active processor count.
    public static var availableCores: Int {
        let all = ProcessInfo.processInfo.activeProcessorCount
        let bound = Int(rlhf_affinity_cpu_count())
        return bound > 0 ? min(bound, all) : all
    }

    public let helperCount: Int
    /// How long a helper keeps spinning after a job before it parks.
    public let spinWindowNanoseconds: UInt64

    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let parkRequested = Atomic<Bool>(false)
    private let busy = Atomic<Bool>(false)
    private let sleeping: [AtomicFlag]
    /// Per helper, who runs its chunk of the current job: 0 = not yet taken, 1 = the helper, 2 = the caller.
    private let taken: [AtomicFlag]
    private let semaphores: [DispatchSemaphore]
    nonisolated(unsafe) private var job: ((Int) -> Void)?
    nonisolated(unsafe) private var chunkCount = 0

    public init(helpers: Int, spinWindowMicroseconds: Int = 300) {
        helperCount = max(0, helpers)
        spinWindowNanoseconds = UInt64(spinWindowMicroseconds) * 1000
        sleeping = (0..<helperCount).map { _ in AtomicFlag() }
        taken = (0..<helperCount).map { _ in AtomicFlag() }
        semaphores = (0..<helperCount).map { _ in DispatchSemaphore(value: 0) }
        for i in 0..<helperCount {
            let thread = Thread { [unowned self] in self.helperLoop(index: i) }
            thread.name = "rlhf-pool-\(i + 1)"
            thread.start()
        }
    }

    /// Total threads that run a parallel loop (helpers + caller).
    public var threadCount: Int { helperCount + 1 }

    /// Work units (grains) below which a parked helper is not woken; `grain` should be ~0.5 µs of work.
    public static let wakeWorthyUnits = 64

    /// True when every helper is parked (or parking) on its semaphore.
    var helpersAreParked: Bool {
        helperCount > 0 && sleeping[0].value.load(ordering: .relaxed) == 1
    }

    /// Asks spinning helpers to park now (call before handing the cores to BLAS).
    @inline(__always)
    public func park() {
        if helperCount > 0 { parkRequested.store(true, ordering: .relaxed) }
    }

    /// Runs `body` over `count` indices split into one contiguous range per thread.
    /// `grain` is the number of indices worth about 0.5 µs of work. Runs serially when there are fewer
    /// than 2 grains, when the helpers are parked and there are fewer than `wakeWorthyUnits` grains,
    /// when called from inside a parallel body, or when another thread is using the pool — over the same ranges,
    /// one after another, so a result never depends on whether the pool was free (kernels that tile rows round
    /// differently at a range's edge). `body` must write disjoint memory per range.
    /// `cost` overrides the work estimate in grains when `count` is a number of chunks.
    public func parallelFor(_ count: Int, grain: Int = 1, cost: Int? = nil, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let units = cost ?? count / max(grain, 1)
        let threads = min(threadCount, count / max(grain, 1))
        // Waking a parked helper costs 25–50 µs: only worth it for ≥ ~30 µs of work (64 grains); once awake it
        // spins for the next job, so a stream of such ops keeps both threads busy.
        if threads < 2 {
            body(0..<count)
            return
        }
        if (units < Self.wakeWorthyUnits && helpersAreParked)
            || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        {
            for i in 0..<threads { body((count * i / threads)..<(count * (i + 1) / threads)) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        let kernelCap = rk_thread_path_cap()  // the caller's kernel path, for the helpers (KernelDispatch.withPath)
        withoutActuallyEscaping(body) { body in
            let chunk = { (i: Int) -> Void in
                let lo = count * i / threads, hi = count * (i + 1) / threads
                if i > 0 { rk_set_thread_path(kernelCap) }
                if lo < hi { body(lo..<hi) }
            }
            job = chunk
            chunkCount = threads
            pending.store(threads - 1, ordering: .relaxed)
            parkRequested.store(false, ordering: .relaxed)
            for i in 0..<(threads - 1) { taken[i].value.store(0, ordering: .releasing) }
            generation.add(1, ordering: .sequentiallyConsistent)
            for i in 0..<(threads - 1) where sleeping[i].value.exchange(0, ordering: .sequentiallyConsistent) == 1 {
                semaphores[i].signal()
            }
            chunk(0)
            // A helper that has not started its chunk yet (still waking, or its vCPU descheduled by the host)
            // loses it to the caller, so the caller never waits for a thread that is not running.
            for i in 0..<(threads - 1)
            where taken[i].value.compareExchange(expected: 0, desired: 2, ordering: .acquiringAndReleasing).exchanged {
                chunk(i + 1)
                pending.subtract(1, ordering: .relaxed)
            }
            while pending.load(ordering: .acquiring) > 0 { rk_cpu_relax() }
            job = nil
        }
    }

    @inline(never)
    private func runJob(_ chunk: Int) { job?(chunk) }

    private func helperLoop(index: Int) {
        var seen = 0
        while true {
            var spins = 0
            var start = DispatchTime.now().uptimeNanoseconds
            while generation.load(ordering: .acquiring) == seen {
                rk_cpu_relax()
                spins &+= 1
                if spins & 255 != 0 { continue }
                let expired = DispatchTime.now().uptimeNanoseconds - start > spinWindowNanoseconds
                if expired || parkRequested.load(ordering: .relaxed) {
                    sleeping[index].value.store(1, ordering: .sequentiallyConsistent)
                    if generation.load(ordering: .sequentiallyConsistent) != seen {
                        // Work arrived while parking: if the dispatcher already took the flag it will
                        // signal, so consume that signal to keep the semaphore balanced.
                        if sleeping[index].value.exchange(0, ordering: .sequentiallyConsistent) == 0 {
                            semaphores[index].wait()
                        }
                        break
                    }
                    semaphores[index].wait()
                    start = DispatchTime.now().uptimeNanoseconds
                }
            }
            seen = generation.load(ordering: .acquiring)
            if index + 1 < chunkCount
                && taken[index].value.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing)
                    .exchanged
            {
                runJob(index + 1)  // releases its reference to the job before signalling completion
                pending.subtract(1, ordering: .releasing)
            }
        }
    }
}

/// `ThreadPool.shared.parallelFor`.
@inline(__always)
public func parallelFor(_ count: Int, grain: Int = 1, cost: Int? = nil, _ body: (Range<Int>) -> Void) {
    ThreadPool.shared.parallelFor(count, grain: grain, cost: cost, body)
}

/// Runs `body` over [0, count) in chunks of `chunk` indices that the pool's threads claim one at a time, so
/// a thread the machine slows down (a preempted vCPU on a shared host) takes fewer of them instead of
/// holding the others at the barrier. For independent pieces of compute-bound work worth waking the pool
/// for (each chunk ≥ a few µs). Which thread runs a chunk varies: `body` must not depend on it.
/// Each thread first claims the chunks of its own contiguous share in order, then helps with the others'
/// shares: its reads stay one long forward stream, which the hardware prefetcher follows across chunks.
/// (Chunks claimed from one shared counter interleave the threads' streams, and every chunk then starts
/// cold: a batch-1 decode product on 2 cores took 24 µs instead of 17 at 1536 × 576 Q4_1.)
public func parallelForClaimed(_ count: Int, chunk: Int, _ body: (Range<Int>) -> Void) {
    if count <= 0 { return }
    let claims = ClaimedShares(count: count, chunk: chunk, shares: ThreadPool.shared.threadCount)
    ThreadPool.shared.parallelFor(claims.shares, cost: Int.max / 2) { workers in
        for w in workers { while let r = claims.next(worker: w) { body(r) } }
    }
}

/// The chunks `parallelForClaimed` hands out: [0, count) in `shares` contiguous shares, each claimed chunk by
/// chunk in order from its own counter.
struct ClaimedShares: Sendable {
    let count: Int, chunk: Int, shares: Int
    private let claimed: [AtomicFlag]  // per share: indices claimed so far

    init(count: Int, chunk: Int, shares: Int) {
        self.count = count
        self.chunk = max(1, chunk)
        self.shares = max(1, shares)
        claimed = (0..<self.shares).map { _ in AtomicFlag() }
    }

    /// Worker w's next chunk: from its own share while that lasts, then from the following shares in turn;
    /// nil once every share is claimed.
    func next(worker w: Int) -> Range<Int>? {
        for k in 0..<shares {
            let s = (w + k) % shares, lo = count * s / shares, hi = count * (s + 1) / shares
            let start = lo + claimed[s].value.wrappingAdd(chunk, ordering: .relaxed).oldValue
            if start < hi { return start..<min(hi, start + chunk) }
        }
        return nil
    }
}

private final class AtomicFlag: Sendable {
    let value = Atomic<Int>(0)
}

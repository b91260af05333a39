// `mpirun -np N Benchmarks allreduce`: the data-parallel step's exchange, an in-place sum over the ranks of
// the trainable gradients, for SmolLM2-135M's LoRA r=16 (all seven projections) and full fine-tune sizes.
// Rank 0 prints the time per all-reduce and the bytes each rank sends.

import Distributed
import Foundation
import TensorCore

enum DistributedBenchmarks {
    static func run() throws {
        let world = try World.current()
        let sizes: [(String, Int)] = [
            ("LoRA r=16, 7 projections (SmolLM2-135M)", 4_884_480), ("full fine-tune (SmolLM2-135M)", 134_515_008),
        ]
        if world.isMain { print("all-reduce (sum, in place) over \(world.size) rank(s), Open MPI on this host") }
        for (name, count) in sizes {
            let buffer = FloatBuffer(count: count)
            for i in 0..<count { buffer.pointer[i] = Float(i % 7) }
            let runs = count > 10_000_000 ? 5 : 20
            try world.allReduceSum(buffer.pointer, count: count)  // warm-up: connections, pages
            var times: [Double] = []
            for _ in 0..<runs {
                let start = DispatchTime.now().uptimeNanoseconds
                try world.allReduceSum(buffer.pointer, count: count)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            times.sort()
            if world.isMain {
                let mb = Double(count * 4) / 1e6
                print(
                    String(
                        format: "  %@: %.1f MB per rank, median %.1f ms (min %.1f), %.2f GB/s algorithm bandwidth",
                        name, mb, times[runs / 2], times[0], mb / times[runs / 2]))  // MB per ms = GB/s
            }
        }
    }
}

// Seeded shuffling, splits and data fractions, exact resume, and packing that keeps every token.

import Datasets
import Foundation
import Testing
import _SharedData

/// `count` synthetic examples with seeded lengths 1...maxLength; token values encode
/// (example, position) so misplaced tokens are visible.
private func syntheticExamples(_ count: Int, maxLength: Int = 40, seed: UInt64 = 7)
    -> [EncodedExample]
{
    var random = SplitMix64(seed: seed)
    return (0..<count).map { example in
        let length = 1 + random.uniform(below: maxLength)
        return EncodedExample(
            ids: (0..<length).map { Int32(example * 1000 + $0) },
            lossMask: (0..<length).map { _ in random.uniform(below: 2) == 1 },
            sourceLine: example + 1)
    }
}

private func loaderConfig(
    batchSize: Int = 4, seed: UInt64 = 1, packing: PackingStrategy = .none, packedLength: Int = 64
) -> DataLoaderConfig {
    var config = DataLoaderConfig()
    config.batchSize = batchSize
    config.seed = seed
    config.packing = packing
    config.packedLength = packedLength
    return config
}

/// The batches of one epoch, starting at its first batch.
private func epoch(_ loader: inout DataLoader) -> [Batch] {
    let epoch = loader.position.epoch
    var batches: [Batch] = []
    while loader.position.epoch == epoch { batches.append(loader.next()) }
    return batches
}

@Suite("Data loader")
struct LoaderTests {
    @Test func splitMix64MatchesTheReferenceSequence() {
        // Reference values of splitmix64.c (Vigna) from state 0.
        var random = SplitMix64(seed: 0)
        #expect(random.next() == 0xE220_A839_7B1D_CDAF)
        #expect(random.next() == 0x6E78_9E6A_A1B9_65F4)
    }

    @Test func seededShuffleIsReproducibleAndSeedsDiffer() throws {
        let examples = syntheticExamples(50)
        var a = try DataLoader(examples: examples, config: loaderConfig(seed: 1))
        var b = try DataLoader(examples: examples, config: loaderConfig(seed: 1))
        var c = try DataLoader(examples: examples, config: loaderConfig(seed: 2))
        let epochA = epoch(&a)
        #expect(epochA == epoch(&b))
        #expect(epochA.map(\.tokens) != epoch(&c).map(\.tokens))
        // Every example exactly once per epoch, and the next epoch has another order.
        let seen = epochA.flatMap { $0.segments.flatMap { $0.map(\.example) } }
        #expect(seen.sorted() == Array(0..<50))
        #expect(epochA.count == 13 && epochA.last?.tokens.count == 2)
        let nextSeen = epoch(&a).flatMap { $0.segments.flatMap { $0.map(\.example) } }
        #expect(nextSeen.sorted() == Array(0..<50) && nextSeen != seen)
        #expect(a.order(epoch: 0) == seen)
    }

    @Test func withoutShufflingRowsFollowFileOrder() throws {
        var config = loaderConfig()
        config.shuffles = false
        config.dropsLastBatch = true
        var loader = try DataLoader(examples: syntheticExamples(10), config: config)
        let batches = epoch(&loader)
        #expect(batches.count == 2)
        #expect(batches.flatMap { $0.segments.flatMap { $0.map(\.example) } } == Array(0..<8))
    }

    @Test func resumeReproducesTheRemainingOrder() throws {
        let examples = syntheticExamples(23)
        for packing in PackingStrategy.allCases {
            let config = loaderConfig(batchSize: 3, seed: 99, packing: packing)
            var original = try DataLoader(examples: examples, config: config)
            for _ in 0..<7 { _ = original.next() }
            let saved = try JSONDecoder().decode(
                DataLoaderPosition.self, from: JSONEncoder().encode(original.position))
            #expect(saved == original.position)
            let expected = (0..<20).map { _ in original.next() }  // crosses epoch boundaries
            var resumed = try DataLoader(examples: examples, config: config, position: saved)
            #expect((0..<20).map { _ in resumed.next() } == expected)
            #expect(resumed.position == original.position)
        }
    }

    @Test func resumeRejectsAnotherSeedOrABadPosition() {
        let examples = syntheticExamples(10)
        #expect(throws: DatasetConfigError.self) {
            try DataLoader(
                examples: examples, config: loaderConfig(seed: 1),
                position: DataLoaderPosition(epoch: 0, batch: 0, seed: 2))
        }
        #expect(throws: DatasetConfigError.self) {
            try DataLoader(
                examples: examples, config: loaderConfig(seed: 1),
                position: DataLoaderPosition(epoch: 0, batch: 3, seed: 1))
        }
    }

    @Test(arguments: [PackingStrategy.wrapped, .wholeExamples])
    func packingPreservesAllTokens(strategy: PackingStrategy) throws {
        let examples = syntheticExamples(60, maxLength: 90)
        var loader = try DataLoader(
            examples: examples, config: loaderConfig(packing: strategy, packedLength: 64))
        let order = loader.order(epoch: 0)
        let batches = epoch(&loader)
        let rows = batches.flatMap(\.tokens)
        let masks = batches.flatMap(\.lossMask)
        #expect(rows.flatMap { $0 } == order.flatMap { examples[$0].ids })
        #expect(masks.flatMap { $0 } == order.flatMap { examples[$0].lossMask })
        #expect(rows.allSatisfy { $0.count <= 64 })
        if strategy == .wrapped {
            #expect(rows.dropLast().allSatisfy { $0.count == 64 })
        } else {
            // Only examples longer than a row are split.
            let split = batches.flatMap { $0.segments.flatMap { $0 } }
                .filter { $0.tokenRange.count < examples[$0.example].ids.count }
            #expect(split.allSatisfy { examples[$0.example].ids.count > 64 })
        }
        let total = examples.reduce(0) { $0 + $1.ids.count }
        #expect(batches.reduce(0) { $0 + $1.tokenCount } == total)
        #expect(
            batches.reduce(0) { $0 + $1.trainedTokenCount }
                == examples.reduce(0) { $0 + $1.trainedTokenCount })
    }

    @Test func labelsAndPadding() throws {
        var loader = try DataLoader(examples: syntheticExamples(4), config: loaderConfig())
        let batch = loader.next()
        let labels = batch.labels()
        for (row, (ids, mask)) in zip(labels, zip(batch.tokens, batch.lossMask)) {
            #expect(row == zip(ids, mask).map { $1 ? $0 : -100 })
        }
        let padded = batch.padded(with: 0)
        let width = batch.tokens.map(\.count).max()!
        #expect(padded.tokens.allSatisfy { $0.count == width })
        #expect(padded.lossMask.flatMap { $0 }.filter { $0 }.count == batch.trainedTokenCount)
    }

    @Test func splitIsSeededDisjointAndStableAcrossFractions() throws {
        var config = SplitConfig()
        config.evalFraction = 0.1
        config.seed = 5
        let full = try DatasetSplit(count: 2630, config: config)
        #expect(full.eval.count == 263 && full.train.count == 2367)
        #expect(Set(full.eval).isDisjoint(with: full.train))
        #expect((full.eval + full.train).sorted() == Array(0..<2630))

        config.dataFraction = 0.1
        let pilot = try DatasetSplit(count: 2630, config: config)
        #expect(pilot.eval == full.eval)
        #expect(pilot.train.count == 237)
        config.dataFraction = 0.05
        let smaller = try DatasetSplit(count: 2630, config: config)
        #expect(smaller.train.count == 118)
        #expect(Set(smaller.train).isSubset(of: pilot.train))
        #expect(try DatasetSplit(count: 2630, config: config) == smaller)

        config.seed = 6
        #expect(try DatasetSplit(count: 2630, config: config).eval != full.eval)
    }

    @Test func dataFractionWithoutEval() throws {
        var config = SplitConfig()
        for (fraction, size) in [(1.0, 2630), (0.5, 1315), (0.1, 263), (0.05, 132), (1e-9, 1)] {
            config.dataFraction = fraction
            let split = try DatasetSplit(count: 2630, config: config)
            #expect(split.train.count == size && split.eval.isEmpty)
            #expect(split.train == split.train.sorted())
        }
        config.dataFraction = 1
        config.evalCount = 100
        #expect(try DatasetSplit(count: 2630, config: config).eval.count == 100)
    }

    @Test(arguments: [
        #"{"dataFraction": 0}"#, #"{"dataFraction": 1.5}"#,
        #"{"evalFraction": 0.1, "evalCount": 5}"#,
        #"{"evalCount": 10}"#, #"{"datafraction": 0.1}"#,
    ])
    func invalidSplitConfigs(json: String) {
        #expect(throws: (any Error).self) {
            let config = try JSONDecoder().decode(SplitConfig.self, from: Data(json.utf8))
            _ = try DatasetSplit(count: 10, config: config)
        }
    }

    @Test func configsDecodeOverDefaults() throws {
        let config = try JSONDecoder().decode(
            DataLoaderConfig.self, from: Data(#"{"batchSize": 2, "packing": "wrapped"}"#.utf8))
        var expected = DataLoaderConfig()
        expected.batchSize = 2
        expected.packing = .wrapped
        #expect(config == expected)
        #expect(throws: (any Error).self) {
            try JSONDecoder().decode(DataLoaderConfig.self, from: Data(#"{"batch_size": 2}"#.utf8))
        }
        let sft = try JSONDecoder().decode(
            SFTEncodingConfig.self, from: Data(#"{"maxLength": 256}"#.utf8))
        #expect(sft.maxLength == 256 && sft.loss == .completionOnly)
        let read = try JSONDecoder().decode(
            ReadOptions.self, from: Data(#"{"skipInvalid": true}"#.utf8))
        #expect(read == ReadOptions(skipInvalid: true))
    }

    @Test(SharedData.needs("data/alpaca_sft.jsonl")) func pilotPipelineFromFileToBatches() throws {
        let dataset = try Fixtures.alpaca()
        var split = SplitConfig()
        split.dataFraction = 0.05
        split.evalCount = 20
        let (trainRecords, evalRecords) = try dataset.split(split)
        #expect(evalRecords.count == 20 && trainRecords.count == 131)  // round(0.05 × 2610)
        #expect(Set(trainRecords.lineNumbers).isDisjoint(with: evalRecords.lineNumbers))
        let encoder = try SFTEncoder(
            tokenizer: Fixtures.tokenizer(), chatTemplate: Fixtures.chatTemplate())
        let train = try encoder.encode(trainRecords)
        #expect(train.examples.count == trainRecords.count)
        var loader = try DataLoader(
            examples: train.examples,
            config: loaderConfig(batchSize: 8, packing: .wholeExamples, packedLength: 512))
        let batches = epoch(&loader)
        #expect(batches.reduce(0) { $0 + $1.tokenCount } == train.report.tokens)
        #expect(batches.reduce(0) { $0 + $1.trainedTokenCount } == train.report.trainedTokens)
    }
}

@Suite("Length grouping") struct LengthGroupingTests {
    /// Every example once per epoch, batches far more length-homogeneous than plain shuffling,
    /// reproducible, and resumable mid-epoch.
    @Test func groupsByLengthKeepsEveryExampleAndCutsPadding() throws {
        let examples = syntheticExamples(1000, maxLength: 200)
        var grouped = loaderConfig(batchSize: 8, seed: 3)
        grouped.groupsByLength = true
        func padding(_ config: DataLoaderConfig) throws -> (Int, [Int]) {
            var loader = try DataLoader(examples: examples, config: config)
            var waste = 0
            var seen: [Int] = []
            for _ in 0..<loader.batchesInEpoch {
                let b = loader.next()
                let longest = b.tokens.map(\.count).max() ?? 0
                waste += b.tokens.reduce(0) { $0 + longest - $1.count }
                seen += b.segments.flatMap { $0.map(\.example) }
            }
            return (waste, seen)
        }
        let (plainWaste, _) = try padding(loaderConfig(batchSize: 8, seed: 3))
        let (groupedWaste, seen) = try padding(grouped)
        #expect(seen.sorted() == Array(0..<1000))
        #expect(groupedWaste * 5 < plainWaste, "padding \(groupedWaste) vs \(plainWaste)")
        let (_, again) = try padding(grouped)
        #expect(again == seen)
        // Resume after 10 batches reproduces the rest of the epoch.
        var first = try DataLoader(examples: examples, config: grouped)
        for _ in 0..<10 { _ = first.next() }
        var resumed = try DataLoader(examples: examples, config: grouped, position: first.position)
        for _ in 0..<5 { #expect(first.next().tokens == resumed.next().tokens) }
    }
}

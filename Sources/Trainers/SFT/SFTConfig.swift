// Hyper-parameters of supervised fine-tuning: the shared `TrainingArguments` plus SFT's own keys, in
// TRL's names (snake_case) so a TRL user's config reads naturally. Defaults live on the properties.

import Datasets
import Foundation
import Models
import TensorCore

public struct SFTConfig: TrainerConfig {
    public var training = TrainingArguments()
    /// Concatenate examples into rows of `max_length` tokens.
    public var packing: Bool = false
    /// Batch examples of similar length to cut padding (TRL's `group_by_length`; ignored with packing).
    public var groupByLength: Bool = false
    /// `completion_only` (assistant turns / completions) or `all_tokens`.
    public var loss: LossScope = .completionOnly

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case packing, groupByLength = "group_by_length", loss
    }

    public static var ownKeys: [String] { CodingKeys.allCases.map(\.rawValue) }

    public init(from decoder: any Decoder) throws {
        training = try TrainingArguments(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        packing = try c.decode(Bool.self, forKey: .packing)
        groupByLength = try c.decode(Bool.self, forKey: .groupByLength)
        loss = try c.decode(LossScope.self, forKey: .loss)
    }

    public func encode(to encoder: any Encoder) throws {
        try training.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(packing, forKey: .packing)
        try c.encode(groupByLength, forKey: .groupByLength)
        try c.encode(loss, forKey: .loss)
    }

    public func validate() throws { try training.validate() }
}

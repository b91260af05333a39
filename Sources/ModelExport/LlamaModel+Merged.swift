// A merged copy of a LoRA-adapted model: W = W₀ + s·B·A (Hu et al. 2021, Eq. 3; s = α/r, or α/√r
// with rsLoRA) computed in a fresh weight store, so the caller's base weights stay bit-identical
// (merging and unmerging in place would leave rounding residue in W₀).

import Models
import TensorCore

extension LlamaModel {
    /// A frozen copy of this model with `adapter` merged into its projections; the copy computes
    /// what this model computes with the adapter active (up to float rounding, ≈1e-6 relative).
    /// O(parameters) memory and time; this model is unchanged.
    ///
    /// - Throws: `ExportError.adapterMismatch` when the adapter was made for another model shape.
    public func merged(with adapter: LoRAAdapter) throws -> LlamaModel {
        try ExportError.requireDense(self)
        let expected = PEFTAdapter.layout(adapter.config, model: config)
        let found = adapter.store.entries
        for (i, (name, shape)) in expected.enumerated() {
            guard i < found.count, found[i].name == name, found[i].shape == shape else {
                let actual = found.first { $0.name == name }?.shape ?? []
                throw ExportError.adapterMismatch(
                    adapter: adapter.name, name: name, expected: shape, found: actual)
            }
        }
        if found.count > expected.count {
            let extra = found[expected.count]
            throw ExportError.adapterMismatch(
                adapter: adapter.name, name: extra.name, expected: [], found: extra.shape)
        }
        let copy = LlamaModel(config: config, trainable: false)
        copy.weights.values.pointer.update(
            from: weights.values.pointer, count: weights.values.count)
        let twin = try copy.addAdapter(named: adapter.name, config: adapter.config, seed: 0)
        twin.store.values.pointer.update(
            from: adapter.store.values.pointer, count: adapter.store.values.count)
        copy.merge(adapter: adapter.name)
        return copy
    }
}

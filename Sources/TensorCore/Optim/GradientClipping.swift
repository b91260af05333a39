// Global-norm gradient clipping (Pascanu et al. 2013, Algorithm 1; PyTorch clip_grad_norm_):
//   ‖g‖ = √(Σ g²);  if ‖g‖ > max: g ← g · max / (‖g‖ + 1e-6)

public enum GradientClipping {
    /// The global L2 norm over every gradient of the stores.
    public static func globalNorm(_ stores: [ParameterStore]) -> Float {
        var total = 0.0
        for s in stores { if let g = s.gradients { total += Reductions.sumOfSquares(g.pointer, count: g.count) } }
        return Float(total.squareRoot())
    }

    /// Scales gradients so their global norm is at most `maxNorm`; returns the norm before clipping.
    @discardableResult
    public static func clip(_ stores: [ParameterStore], maxNorm: Float) -> Float {
        let norm = globalNorm(stores)
        let factor = maxNorm / (norm + 1e-6)
        if factor < 1 {
            for s in stores { if let g = s.gradients { Elementwise.scale(g.pointer, by: factor, count: g.count) } }
        }
        return norm
    }
}

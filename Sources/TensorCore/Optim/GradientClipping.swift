// Global-norm gradient clipping (Pascanu et al. 2013, Algorithm 1; PyTorch clip_grad_norm_):
//   ‖g‖ = √(Σ g²);  if ‖g‖ > max: g ← g · max / (‖g‖ + 1e-6)

public enum GradientClipping {
    /// The global L2 norm over every gradient of the stores.
    public static func globalNorm(_ stores: [ParameterStore]) -> Float {
        var total = 0.0
        for s in stores { if let g = s.gradients { total += Reductions.sumOfSquares(g.pointer, count: g.count) } }
        return Float(total.squareRoot())
    }

    /// The global norm and the factor `clip` scales gradients by (1 when the norm is within `maxNorm`),
    /// for optimizers that apply the factor as they read the gradients (`AdamW.update(gradientScale:)`).
    public static func clipFactor(_ stores: [ParameterStore], maxNorm: Float) -> (norm: Float, factor: Float) {
        let norm = globalNorm(stores)
        let factor = maxNorm / (norm + 1e-6)
        return (norm, factor < 1 ? factor : 1)
    }

    /// Scales gradients so their global norm is at most `maxNorm`; returns the norm before clipping.
    @discardableResult
    public static func clip(_ stores: [ParameterStore], maxNorm: Float) -> Float {
        let (norm, factor) = clipFactor(stores, maxNorm: maxNorm)
        if factor < 1 {
            for s in stores { if let g = s.gradients { Elementwise.scale(g.pointer, by: factor, count: g.count) } }
        }
        return norm
    }
}

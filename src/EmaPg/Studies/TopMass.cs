using static TorchSharp.torch;

namespace EmaPg.Studies;

/// <summary>
/// Concentration of a categorical policy (App. G, eq. 106): M_k(π) = Σ_{j ∈ TopK(π, k)} π(j), and the
/// bisection on the logit scale s that makes M_k(softmax(s·z̃)) hit a target mass (eq. 107).
/// </summary>
public static class TopMass
{
    /// <summary>M_k(softmax(logits)) for a 1-D logit vector.</summary>
    public static double Of(Tensor logits, int k)
    {
        using var _ = NewDisposeScope();
        var p = logits.to_type(ScalarType.Float64).softmax(0);
        return p.topk(Math.Min(k, (int)p.shape[0])).values.sum().item<double>();
    }

    /// <summary>
    /// The scale s > 0 with M_k(softmax(s·z̃)) = <paramref name="target"/> to within <paramref name="tolerance"/>.
    /// M_k is increasing in s (the top-k set of s·z̃ does not depend on s &gt; 0 and its share grows with s),
    /// from k/|V| at s = 0 to 1 as s → ∞, so bisection on a bracket found by doubling converges.
    /// </summary>
    public static double FindScale(Tensor zTilde, int k, double target, double tolerance = 1e-10, int maxIterations = 200)
    {
        int v = (int)zTilde.shape[0];
        if (k >= v) throw new ArgumentException($"top-{k} mass is 1 for a vocabulary of {v}");
        double floor = (double)k / v;
        if (!(target > floor && target < 1))
            throw new ArgumentOutOfRangeException(nameof(target), $"target top-{k} mass must lie in ({floor:G4}, 1), got {target}");
        double lo = 0, hi = 1;
        while (Of(zTilde * hi, k) < target)
        {
            lo = hi;
            hi *= 2;
            if (hi > 1e6) throw new InvalidOperationException($"no scale reaches top-{k} mass {target}");
        }
        for (int i = 0; i < maxIterations; i++)
        {
            double mid = 0.5 * (lo + hi);
            double m = Of(zTilde * mid, k);
            if (Math.Abs(m - target) <= tolerance) return mid;
            if (m < target) lo = mid; else hi = mid;
        }
        return 0.5 * (lo + hi);
    }
}

using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>
/// Kf⁺⁺, eq. 115: r · g_f(w) with w = π_ref(p)/π_θ(p) left differentiable. Unbiased in value and in
/// gradient for any f (eq. 117–119), because the r-trick (eq. 83) restores ∇E[g_f] from E[∇(r g_f)].
/// </summary>
public static class SampledFDivergence
{
    public static Tensor Compute(FDivergence f, Tensor policyLogp, Tensor anchorLogp, double clamp = 20) =>
        Ratios.R(policyLogp) * f.GOfLogT(Ratios.LogRatio(policyLogp, anchorLogp, clamp));
}

using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>
/// The shared building blocks of Table 1: ℓ = −log w = log π_θ − log π_ref, w, r and the off-policy
/// weight s. Log-ratios are clamped to ±<see cref="EstimatorOptions.LogRatioClamp"/> (default 20, as
/// verl's kl_penalty does) before exponentiation: e^20 ≈ 5e8 already makes any estimate meaningless,
/// and beyond it float32 overflows to ∞ and poisons the whole batch. Inside the clamp the estimators are
/// exact, which is what the exact-expectation tests check.
/// </summary>
public static class Ratios
{
    /// <summary>ℓ = log π_θ(p) − log π_ref(p) = −log w (differentiable through π_θ), clamped.</summary>
    public static Tensor LogRatio(Tensor policyLogp, Tensor anchorLogp, double clamp) =>
        (policyLogp - anchorLogp).clamp(-clamp, clamp);

    /// <summary>r = π_θ(p) / sg(π_θ(p)) (eq. 21): 1 in value, ∇ log π_θ(p) in gradient.</summary>
    public static Tensor R(Tensor policyLogp) => (policyLogp - policyLogp.detach()).exp();

    /// <summary>log r: 0 in value, ∇ log π_θ(p) in gradient.</summary>
    public static Tensor LogR(Tensor policyLogp) => policyLogp - policyLogp.detach();

    /// <summary>s = clip(sg(π_θ(p) / π_sampling(p)), s_min, s_max): the off-policy importance weight (§5.2, Alg. 1 line 4).</summary>
    public static Tensor ImportanceWeight(Tensor policyLogp, Tensor samplingLogp, EstimatorOptions o)
    {
        var s = (policyLogp.detach() - samplingLogp.detach()).clamp(-o.LogRatioClamp, o.LogRatioClamp).exp();
        // s ≤ e^LogRatioClamp already, so a larger s_max clips nothing; skipping it keeps values like 1e308,
        // which float32 cannot hold, from reaching clamp.
        if (o.SMin > 0) s = s.clamp_min(o.SMin);
        if (o.SMax < Math.Exp(o.LogRatioClamp)) s = s.clamp_max(o.SMax);
        return s;
    }
}

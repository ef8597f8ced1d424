using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>
/// Truncated reverse KL (§5.3, (KL_trun)_n): Σ_{j∈q} π_θ(j) log(π_θ(j)/π_ref(j)), the exact head with no
/// tail. Biased in value and gradient (it drops the tail), deterministic given q.
/// </summary>
public static class TruncatedReverseKl
{
    public static Tensor Compute(Tensor policyLogpQ, Tensor anchorLogpQ, double clamp = 20) =>
        (policyLogpQ.exp() * Ratios.LogRatio(policyLogpQ, anchorLogpQ, clamp)).sum(-1);
}

using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>
/// Truncated forward KL (§5.3, (FKL_trun)_n): Σ_{j∈q} π_ref(j) log(π_ref(j)/π_θ(j)), q from the anchor.
/// Biased in value and gradient (it drops the tail).
/// </summary>
public static class TruncatedForwardKl
{
    public static Tensor Compute(Tensor policyLogpQ, Tensor anchorLogpQ, double clamp = 20) =>
        (anchorLogpQ.detach().exp() * -Ratios.LogRatio(policyLogpQ, anchorLogpQ, clamp)).sum(-1);
}

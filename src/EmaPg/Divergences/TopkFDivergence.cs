using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>
/// Top-k f-divergence, eq. 122: Σ_{j∈S} π_ref(j) f(π_θ(j)/π_ref(j)) + s·1(p∉S)·Kf⁺⁺. Unlike Algorithms 1–2
/// its tail carries no baseline, so masking keeps it unbiased in value and gradient for any index set S.
/// </summary>
public static class TopkFDivergence
{
    public static Tensor Compute(FDivergence f, Tensor policyLogp, Tensor anchorLogp, Tensor policyLogpQ, Tensor anchorLogpQ, Tensor sampledInQ, Tensor s, double clamp = 20)
    {
        var head = (anchorLogpQ.detach().exp() * f.FOfLogT(Ratios.LogRatio(policyLogpQ, anchorLogpQ, clamp))).sum(-1);
        return head + TailMask.Tail(sampledInQ, s, SampledFDivergence.Compute(f, policyLogp, anchorLogp, clamp));
    }
}

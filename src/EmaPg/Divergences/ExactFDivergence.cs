using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>Exact f-divergence, eq. 109: Σ_j π_ref(j) f(π_θ(j)/π_ref(j)) over the whole vocabulary.</summary>
public static class ExactFDivergence
{
    public static Tensor Compute(FDivergence f, Tensor policyLogits, Tensor anchorLogits, double clamp = 20)
    {
        var lp = policyLogits.log_softmax(-1);
        var la = anchorLogits.detach().log_softmax(-1);
        return (la.exp() * f.FOfLogT(Ratios.LogRatio(lp, la, clamp))).sum(-1);
    }
}

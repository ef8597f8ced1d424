using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>K3 (§5.2): −log w + w − 1. Unbiased reverse-KL value; its gradient is the forward-KL gradient (eq. 81).</summary>
public static class K3
{
    public static Tensor Compute(Tensor policyLogp, Tensor anchorLogp, double clamp = 20)
    {
        var l = Ratios.LogRatio(policyLogp, anchorLogp, clamp);
        return l + (-l).exp() - 1.0;
    }
}

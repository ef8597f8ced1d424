using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>K2 (§5.2): (log w)²/2. Biased value; unbiased reverse-KL gradient (eq. 80).</summary>
public static class K2
{
    public static Tensor Compute(Tensor policyLogp, Tensor anchorLogp, double clamp = 20) =>
        Ratios.LogRatio(policyLogp, anchorLogp, clamp).square() * 0.5;
}

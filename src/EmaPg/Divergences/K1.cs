using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>K1 (§5.2): −log w. Unbiased reverse-KL value; its expected gradient is 0 (App. E.2).</summary>
public static class K1
{
    public static Tensor Compute(Tensor policyLogp, Tensor anchorLogp, double clamp = 20) =>
        Ratios.LogRatio(policyLogp, anchorLogp, clamp);
}

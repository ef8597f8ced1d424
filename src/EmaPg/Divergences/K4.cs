using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>K4 (eq. 23): r · sg(−log w). Unbiased reverse-KL value and gradient (App. E.5).</summary>
public static class K4
{
    public static Tensor Compute(Tensor policyLogp, Tensor anchorLogp, double clamp = 20) =>
        Ratios.R(policyLogp) * Ratios.LogRatio(policyLogp, anchorLogp, clamp).detach();
}

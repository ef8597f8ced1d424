using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>K3⁺⁺ (eq. 22): r · (−log w + w − 1). Unbiased reverse-KL value and gradient (App. E.4).</summary>
public static class K3PlusPlus
{
    public static Tensor Compute(Tensor policyLogp, Tensor anchorLogp, double clamp = 20) =>
        Ratios.R(policyLogp) * K3.Compute(policyLogp, anchorLogp, clamp);
}

using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>K5 (eq. 24): sg(w) log w + log r. Unbiased forward-KL value and gradient (App. F.2–F.3).</summary>
public static class K5
{
    public static Tensor Compute(Tensor policyLogp, Tensor anchorLogp, double clamp = 20)
    {
        var logW = -Ratios.LogRatio(policyLogp, anchorLogp, clamp);
        return logW.detach().exp() * logW + Ratios.LogR(policyLogp);
    }
}

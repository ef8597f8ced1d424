using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>Exact reverse KL, eq. 18: Σ_j π_θ(j) log(π_θ(j)/π_ref(j)) from full logits; O(|V|) per token.</summary>
public static class ExactReverseKl
{
    public static Tensor Compute(Tensor policyLogits, Tensor anchorLogits)
    {
        var lp = policyLogits.log_softmax(-1);
        var la = anchorLogits.detach().log_softmax(-1);
        return (lp.exp() * (lp - la)).sum(-1);
    }
}

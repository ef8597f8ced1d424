using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>Exact forward KL, App. F.1: Σ_j π_ref(j) log(π_ref(j)/π_θ(j)) from full logits; O(|V|) per token.</summary>
public static class ExactForwardKl
{
    public static Tensor Compute(Tensor policyLogits, Tensor anchorLogits)
    {
        var lp = policyLogits.log_softmax(-1);
        var la = anchorLogits.detach().log_softmax(-1);
        return (la.exp() * (la - lp)).sum(-1);
    }
}

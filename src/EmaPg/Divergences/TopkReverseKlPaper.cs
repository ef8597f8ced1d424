using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>
/// Top-k reverse KL exactly as Algorithm 1 / App. A write it (eq. 26): KL_trun + s·1(p∉q)·K4.
/// Unbiased in value, but NOT in gradient: the head's autograd gradient is Σ_{j∈q} ∇π_θ(j)(ℓ_j + 1) while
/// the masked K4 tail only supplies Σ_{j∉q} ∇π_θ(j) ℓ_j, so E[∇] = ∇KL + ∇M_q with M_q = Σ_{j∈q} π_θ(j).
/// Kept under its paper name for comparison; see <see cref="TopkReverseKl"/> and docs/findings.md.
/// </summary>
public static class TopkReverseKlPaper
{
    public static Tensor Compute(Tensor policyLogp, Tensor anchorLogp, Tensor policyLogpQ, Tensor anchorLogpQ, Tensor sampledInQ, Tensor s, double clamp = 20) =>
        TruncatedReverseKl.Compute(policyLogpQ, anchorLogpQ, clamp) + TailMask.Tail(sampledInQ, s, K4.Compute(policyLogp, anchorLogp, clamp));
}

using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>
/// Top-k forward KL exactly as Algorithm 2 / App. A write it (eq. 27): FKL_trun + s·1(p∉q)·K5.
/// Unbiased in value, but NOT in gradient: K5's log r term is a baseline that only vanishes in
/// expectation over the whole vocabulary; masked to the tail it contributes Σ_{j∉q} ∇π_θ(j) = −∇M_q.
/// Kept under its paper name for comparison; see <see cref="TopkForwardKl"/> and docs/findings.md.
/// </summary>
public static class TopkForwardKlPaper
{
    public static Tensor Compute(Tensor policyLogp, Tensor anchorLogp, Tensor policyLogpQ, Tensor anchorLogpQ, Tensor sampledInQ, Tensor s, double clamp = 20) =>
        TruncatedForwardKl.Compute(policyLogpQ, anchorLogpQ, clamp) + TailMask.Tail(sampledInQ, s, K5.Compute(policyLogp, anchorLogp, clamp));
}

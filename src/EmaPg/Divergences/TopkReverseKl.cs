using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>
/// Top-k reverse KL, corrected (eq. 26 with the head's log-ratio under stop-gradient):
/// Σ_{j∈q} π_θ(j)·sg(ℓ_j) + s·1(p∉q)·K4. Same value as Algorithm 1; its gradient is Algorithm 1's minus the
/// deterministic ∇M_q, so it is unbiased and its gradient covariance is identical to Algorithm 1's
/// (docs/findings.md, finding 1).
/// </summary>
public static class TopkReverseKl
{
    public static Tensor Compute(Tensor policyLogp, Tensor anchorLogp, Tensor policyLogpQ, Tensor anchorLogpQ, Tensor sampledInQ, Tensor s, double clamp = 20)
    {
        var head = (policyLogpQ.exp() * Ratios.LogRatio(policyLogpQ, anchorLogpQ, clamp).detach()).sum(-1);
        return head + TailMask.Tail(sampledInQ, s, K4.Compute(policyLogp, anchorLogp, clamp));
    }
}

using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>
/// Top-k forward KL, corrected (eq. 27 plus a zero-valued head term): FKL_trun + (M_q − sg(M_q)) + s·1(p∉q)·K5,
/// with M_q = Σ_{j∈q} π_θ(j). The added term is 0 in value and contributes +∇M_q, cancelling exactly the
/// −∇M_q that K5's masked log r baseline leaves behind; the correction is deterministic, so the gradient
/// covariance equals Algorithm 2's (docs/findings.md, finding 2).
/// </summary>
public static class TopkForwardKl
{
    public static Tensor Compute(Tensor policyLogp, Tensor anchorLogp, Tensor policyLogpQ, Tensor anchorLogpQ, Tensor sampledInQ, Tensor s, double clamp = 20)
    {
        var mass = policyLogpQ.exp().sum(-1);
        return TopkForwardKlPaper.Compute(policyLogp, anchorLogp, policyLogpQ, anchorLogpQ, sampledInQ, s, clamp) + (mass - mass.detach());
    }
}

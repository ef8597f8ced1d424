using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>
/// Sequence-level KL (eq. 10–12), the WARP / InstructGPT regulariser: the per-sequence estimate
/// Σ_n log(π_θ(y_n)/π_ref(y_n)) is subtracted from the reward, so its gradient reaches the policy through the
/// score function, E[sg(KL_seq) ∇ log π_θ(y|x)] = ∇ KL(π_θ(·|x) ‖ π_ref(·|x)) (eq. 12).
/// </summary>
public static class SequenceKl
{
    /// <summary>Per-sequence estimate [B] from per-token log-probs [B, L] and a response mask [B, L].</summary>
    public static Tensor PerSequence(Tensor policyLogp, Tensor anchorLogp, Tensor mask) =>
        ((policyLogp.detach() - anchorLogp.detach()) * mask).sum(-1);

    /// <summary>The reward-side form: R − β·KL_seq, [B].</summary>
    public static Tensor PenalisedReward(Tensor reward, Tensor policyLogp, Tensor anchorLogp, Tensor mask, double beta) =>
        reward - PerSequence(policyLogp, anchorLogp, mask) * beta;

    /// <summary>Score-function surrogate whose gradient is the unbiased sequence-KL gradient (eq. 11), [B].</summary>
    public static Tensor Surrogate(Tensor policyLogp, Tensor anchorLogp, Tensor mask) =>
        PerSequence(policyLogp, anchorLogp, mask) * (policyLogp * mask).sum(-1);
}

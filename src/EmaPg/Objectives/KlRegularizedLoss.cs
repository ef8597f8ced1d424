using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>The pieces of one mini-batch loss, for logging (scalars are 0-dim tensors).</summary>
public sealed record LossTerms(Tensor Loss, Tensor PolicyObjective, Tensor Kl, Tensor ClipFraction);

/// <summary>
/// Alg. 3 line 22: L(θ) = −J(θ) + β·KL̂, where J is a policy loss's objective (clip-higher by default) and KL̂ any
/// per-token estimator's output, both aggregated over the same masked tokens with the same mode. A policy loss that
/// carries its own regulariser (RPG, GRPO's k3) already returns J − β·D; KL̂ is then only reported, not added.
/// </summary>
public static class KlRegularizedLoss
{
    /// <param name="klPerToken">per-token KL estimates [B, L], or null when β = 0.</param>
    /// <param name="klMode">how KL̂ is aggregated, when it differs from J's (App. A: J per token, KL summed over a sequence's tokens).</param>
    /// <param name="anchorLogp">log π_ref at the tokens [B, L], needed by regularised policy losses only.</param>
    public static LossTerms Compute(Tensor logp, Tensor oldLogp, Tensor advantages, Tensor mask, Tensor? klPerToken, double beta,
        LossAggregationMode mode, double epsLow = GrpoClipHigher.DefaultEpsLow, double epsHigh = GrpoClipHigher.DefaultEpsHigh, PolicyLoss? policyLoss = null,
        Tensor? anchorLogp = null, double dualClipC = double.PositiveInfinity, LossAggregationMode? klMode = null)
    {
        var loss = policyLoss ?? PolicyLosses.Get("clip-higher");
        var inputs = new PolicyLossInputs { Logp = logp, OldLogp = oldLogp, Advantages = advantages, Mask = mask, AnchorLogp = anchorLogp };
        var (objective, clipMask) = loss.Compute(inputs, new PolicyLossOptions(epsLow, epsHigh, dualClipC, beta));
        var j = LossAggregation.Aggregate(objective, mask, mode);
        var kl = klPerToken is null ? zeros_like(j) : LossAggregation.Aggregate(klPerToken, mask, klMode ?? mode);
        var m = mask.to_type(logp.dtype);
        var clipFraction = ((1.0 - clipMask) * m).sum() / m.sum().clamp_min(1.0);
        var total = loss.Regularized ? -j : -j + kl * beta;
        return new LossTerms(total, j.detach(), kl.detach(), clipFraction.detach());
    }
}

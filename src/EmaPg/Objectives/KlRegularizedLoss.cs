using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>The pieces of one mini-batch loss, for logging (scalars are 0-dim tensors).</summary>
public sealed record LossTerms(Tensor Loss, Tensor PolicyObjective, Tensor Kl, Tensor ClipFraction);

/// <summary>
/// Alg. 3 line 22: L(θ) = −J(θ) + β·KL̂, where J is a policy loss's objective (clip-higher by default) and KL̂ any
/// per-token estimator's output, both aggregated over the same masked tokens with the same mode.
/// </summary>
public static class KlRegularizedLoss
{
    /// <param name="klPerToken">per-token KL estimates [B, L], or null when β = 0.</param>
    public static LossTerms Compute(Tensor logp, Tensor oldLogp, Tensor advantages, Tensor mask, Tensor? klPerToken, double beta,
        LossAggregationMode mode, double epsLow = GrpoClipHigher.DefaultEpsLow, double epsHigh = GrpoClipHigher.DefaultEpsHigh, PolicyLoss? policyLoss = null)
    {
        var (objective, clipMask) = (policyLoss ?? PolicyLosses.Get("clip-higher")).Compute(logp, oldLogp, advantages, new PolicyLossOptions(epsLow, epsHigh));
        var j = LossAggregation.Aggregate(objective, mask, mode);
        var kl = klPerToken is null ? zeros_like(j) : LossAggregation.Aggregate(klPerToken, mask, mode);
        var m = mask.to_type(logp.dtype);
        var clipFraction = ((1.0 - clipMask) * m).sum() / m.sum().clamp_min(1.0);
        return new LossTerms(-j + kl * beta, j.detach(), kl.detach(), clipFraction.detach());
    }
}

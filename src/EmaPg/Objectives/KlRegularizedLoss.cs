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

    /// <summary>
    /// The share of rows of a mini-batch in <see cref="Compute"/>'s terms, for a token-local policy loss: Σ over the rows of
    /// −w_J·J + β·w_KL·KL̂ (and of w_J·J, w_KL·KL̂, w_tok·(1 − M) for the reported terms), with the whole mini-batch's
    /// aggregation weights (<see cref="LossAggregation.Weights"/>), so that the shares of all rows add up to Compute's
    /// terms. All tensors are per token over the rows, [r]; advantages per token.
    /// </summary>
    /// <param name="weights">the rows' aggregation weights: of J, of KL̂ (its own mode), and token-mean weights for the clip fraction.</param>
    public static LossTerms ComputeRows(Tensor logp, Tensor oldLogp, Tensor advantages, Tensor mask, Tensor? klPerToken, double beta,
        (Tensor J, Tensor Kl, Tensor Token) weights, PolicyLoss policyLoss, double epsLow = GrpoClipHigher.DefaultEpsLow, double epsHigh = GrpoClipHigher.DefaultEpsHigh,
        Tensor? anchorLogp = null, double dualClipC = double.PositiveInfinity)
    {
        if (!policyLoss.TokenLocal)
            throw new ArgumentException($"Policy loss '{policyLoss.Name}' couples the tokens of a sequence; it cannot be computed in row chunks.");
        var inputs = new PolicyLossInputs
        {
            Logp = logp.unsqueeze(0), OldLogp = oldLogp.unsqueeze(0), Advantages = advantages.unsqueeze(0), Mask = mask.unsqueeze(0),
            AnchorLogp = anchorLogp?.unsqueeze(0),
        };
        var (objective, clipMask) = policyLoss.Compute(inputs, new PolicyLossOptions(epsLow, epsHigh, dualClipC, beta));
        var j = (objective.squeeze(0) * weights.J).sum();
        var kl = klPerToken is null ? zeros_like(j) : (klPerToken * weights.Kl).sum();
        var clipFraction = ((1.0 - clipMask.squeeze(0)) * weights.Token).sum();
        var total = policyLoss.Regularized ? -j : -j + kl * beta;
        return new LossTerms(total, j.detach(), kl.detach(), clipFraction.detach());
    }
}

using EmaPg.Common;
using EmaPg.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>
/// The per-token inputs every estimator works from: O(k) numbers per token. Shapes: N tokens, k indices.
/// Only <see cref="PolicyLogp"/> and <see cref="PolicyLogpQ"/> carry gradient; everything from the anchor
/// and the sampling policy is data (detached). Full-vocabulary logits are present only for the exact
/// estimators, so Top-k estimators can never silently fall back on O(|V|) memory.
/// </summary>
public sealed class KlInputs
{
    /// <summary>log π_θ(p) at the sampled token, [N], differentiable.</summary>
    public required Tensor PolicyLogp { get; init; }
    /// <summary>log π_ref(p) at the sampled token, [N].</summary>
    public required Tensor AnchorLogp { get; init; }
    /// <summary>log π_sampling(p) at the sampled token, [N] (equals PolicyLogp's value on-policy).</summary>
    public required Tensor SamplingLogp { get; init; }
    /// <summary>log π_θ at the index set q, [N, k], differentiable.</summary>
    public Tensor? PolicyLogpQ { get; init; }
    /// <summary>log π_ref at the index set q, [N, k].</summary>
    public Tensor? AnchorLogpQ { get; init; }
    /// <summary>Whether the sampled token is in q, [N] bool.</summary>
    public Tensor? SampledInQ { get; init; }
    /// <summary>Full policy logits [N, V]; only for exact estimators.</summary>
    public Tensor? PolicyLogits { get; init; }
    /// <summary>Full anchor logits [N, V]; only for exact estimators.</summary>
    public Tensor? AnchorLogits { get; init; }

    public long Count => PolicyLogp.shape[0];

    /// <summary>
    /// Builds the inputs from full logits (tests, audit, studies). <paramref name="q"/> may be null (no
    /// index set) or [N, k] int64, k ≥ 0. Full logits are kept only when <paramref name="keepFullLogits"/>.
    /// </summary>
    public static KlInputs FromLogits(Tensor policyLogits, Tensor anchorLogits, Tensor samplingLogp, Tensor sampled, Tensor? q, bool keepFullLogits = false)
    {
        var anchorLogProbs = anchorLogits.detach().log_softmax(-1);
        var idx = sampled.unsqueeze(1);
        var policyLse = policyLogits.logsumexp(-1, keepdim: true);
        return new KlInputs
        {
            PolicyLogp = (policyLogits.gather(1, idx) - policyLse).squeeze(1),
            AnchorLogp = anchorLogProbs.gather(1, idx).squeeze(1),
            SamplingLogp = samplingLogp.detach(),
            PolicyLogpQ = q is null ? null : policyLogits.gather(1, q) - policyLse,
            AnchorLogpQ = q is null ? null : anchorLogProbs.gather(1, q),
            SampledInQ = q is null ? null : Membership(q, sampled),
            PolicyLogits = keepFullLogits ? policyLogits : null,
            AnchorLogits = keepFullLogits ? anchorLogits.detach() : null,
        };
    }

    /// <summary>
    /// Builds the inputs the way the trainer does: the policy's log-probs come from its logits through
    /// logsumexp + gather; the anchor and the sampling policy contribute precomputed O(k) log-probs.
    /// </summary>
    public static KlInputs FromPolicyLogits(Tensor policyLogits, Tensor sampled, Tensor samplingLogp, Tensor anchorLogp, Tensor? q = null, Tensor? anchorLogpQ = null)
    {
        var lse = policyLogits.logsumexp(-1, keepdim: true);
        return new KlInputs
        {
            PolicyLogp = (policyLogits.gather(1, sampled.unsqueeze(1)) - lse).squeeze(1),
            AnchorLogp = anchorLogp.detach(),
            SamplingLogp = samplingLogp.detach(),
            PolicyLogpQ = q is null ? null : policyLogits.gather(1, q) - lse,
            AnchorLogpQ = anchorLogpQ?.detach(),
            SampledInQ = q is null ? null : Membership(q, sampled),
        };
    }

    /// <summary>
    /// Builds the inputs from a token head's per-token outputs (<see cref="TokenHead.Fused"/> or
    /// <see cref="TokenHead.Unfused"/> run with targets = <paramref name="sampled"/> and the same q): no full
    /// logits, so every estimator whose registry entry does not need them runs from O(k) numbers per token.
    /// </summary>
    public static KlInputs FromHead(TokenHeadOutputs head, Tensor sampled, Tensor samplingLogp, Tensor anchorLogp, Tensor? q = null, Tensor? anchorLogpQ = null)
    {
        if ((q is null) != (head.LogpQ is null))
            throw new ArgumentException("q must be given both to the token head and to KlInputs.FromHead, or to neither.");
        return new KlInputs
        {
            PolicyLogp = head.LogpTarget,
            AnchorLogp = anchorLogp.detach(),
            SamplingLogp = samplingLogp.detach(),
            PolicyLogpQ = head.LogpQ,
            AnchorLogpQ = anchorLogpQ?.detach(),
            SampledInQ = q is null ? null : Membership(q, sampled),
        };
    }

    /// <summary>1(p ∈ q) for each token.</summary>
    public static Tensor Membership(Tensor q, Tensor sampled) =>
        q.shape[1] == 0 ? zeros(sampled.shape[0], dtype: ScalarType.Bool, device: sampled.device) : q.eq(sampled.unsqueeze(1)).any(1);

    internal Tensor RequireQ(string estimator, out Tensor anchorQ, out Tensor inQ)
    {
        if (PolicyLogpQ is null || AnchorLogpQ is null || SampledInQ is null)
            throw new ArgumentException($"Estimator '{estimator}' needs the index set q (PolicyLogpQ, AnchorLogpQ, SampledInQ).");
        anchorQ = AnchorLogpQ;
        inQ = SampledInQ;
        return PolicyLogpQ;
    }

    internal (Tensor Policy, Tensor Anchor) RequireLogits(string estimator)
    {
        if (PolicyLogits is null || AnchorLogits is null)
            throw new ArgumentException($"Estimator '{estimator}' is exact and needs full-vocabulary logits (PolicyLogits, AnchorLogits).");
        return (PolicyLogits, AnchorLogits);
    }

    /// <summary>Throws a clear error when any input is NaN or ±∞ (log-probs of −∞ mean a zero-probability token was sampled).</summary>
    public void EnsureFinite()
    {
        Finite(PolicyLogp, nameof(PolicyLogp));
        Finite(AnchorLogp, nameof(AnchorLogp));
        Finite(SamplingLogp, nameof(SamplingLogp));
        if (PolicyLogpQ is not null) Finite(PolicyLogpQ, nameof(PolicyLogpQ));
        if (AnchorLogpQ is not null) Finite(AnchorLogpQ, nameof(AnchorLogpQ));
        if (PolicyLogits is not null) Finite(PolicyLogits, nameof(PolicyLogits));
        if (AnchorLogits is not null) Finite(AnchorLogits, nameof(AnchorLogits));
    }

    private static void Finite(Tensor t, string name)
    {
        using var _ = NewDisposeScope();
        if (t.numel() > 0 && !t.detach().isfinite().all().item<bool>())
            throw new NonFiniteInputError($"KL estimator input {name} contains NaN or infinite values.");
    }
}

/// <summary>Raised when an estimator is given NaN/∞ inputs; the trainer counts and skips such steps.</summary>
public sealed class NonFiniteInputError(string message) : ArithmeticException(message);

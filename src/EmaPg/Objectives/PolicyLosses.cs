using EmaPg.Common;
using EmaPg.Divergences;
using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>Settings a policy loss may read: the clip range, RPG's dual-clip bound c, and β of losses that carry their own regulariser.</summary>
public sealed record PolicyLossOptions(double EpsLow = GrpoClipHigher.DefaultEpsLow, double EpsHigh = GrpoClipHigher.DefaultEpsHigh,
    double DualClipC = double.PositiveInfinity, double Beta = 0.0)
{
    /// <summary>No clipping at all (ε_low = 1 so w ≥ 0 is never below 1 − ε_low, ε_high = c = ∞): the exact tests' and the audit's setting.</summary>
    public static readonly PolicyLossOptions Unclipped = new(1.0, double.PositiveInfinity, double.PositiveInfinity);
}

/// <summary>
/// What a policy loss reads, all [B, L] except the advantages ([B] per sequence or [B, L] per token). Only
/// <see cref="Logp"/> carries gradient; the rest is data.
/// </summary>
public sealed record PolicyLossInputs
{
    /// <summary>log π_θ at the response tokens, differentiable.</summary>
    public required Tensor Logp { get; init; }
    /// <summary>log π_θold at the same tokens (the rollout policy: w = π_θ/π_θold).</summary>
    public required Tensor OldLogp { get; init; }
    public required Tensor Advantages { get; init; }
    /// <summary>1 on the tokens that carry a loss (sequence-level ratios average over these), 0 elsewhere.</summary>
    public required Tensor Mask { get; init; }
    /// <summary>log π_ref (the anchor) at the same tokens; only losses with their own regulariser read it.</summary>
    public Tensor? AnchorLogp { get; init; }

    /// <summary>The advantages as [B, L] (a per-sequence advantage is broadcast over the sequence's tokens).</summary>
    internal Tensor TokenAdvantages => Advantages.dim() == 1 ? Advantages.unsqueeze(1) : Advantages;

    internal Tensor RequireAnchor(string loss) =>
        AnchorLogp?.detach() ?? throw new ArgumentException($"Policy loss '{loss}' carries its own KL regulariser and needs AnchorLogp (log π_ref at the tokens).");
}

/// <summary>
/// A policy-gradient surrogate: from <see cref="PolicyLossInputs"/> to the per-token objective to maximise [B,L] and the
/// mask of tokens it kept [B,L] (1 = kept, 0 = clipped). A loss with a <see cref="Regularizer"/> returns J − β·D per token
/// itself (β from <see cref="PolicyLossOptions.Beta"/>), so the trainer adds no separate KL term for it.
/// </summary>
public sealed record PolicyLoss(string Name, string Equation, string Description, FDivergence? Regularizer,
    Func<PolicyLossInputs, PolicyLossOptions, (Tensor Objective, Tensor Mask)> Compute)
{
    /// <summary>Whether the loss's objective already contains −β·D (RPG, GRPO's k3 term).</summary>
    public bool Regularized => Regularizer is not null;

    /// <summary>
    /// Whether each token's objective depends only on that token's inputs (not GSPO's sequence ratio), so that the loss
    /// can be computed row chunk by row chunk straight from the LM head (<see cref="Heads.TokenHead.FusedLoss"/>).
    /// </summary>
    public bool TokenLocal { get; init; } = true;
}

/// <summary>Every policy loss by name (the config's policy_loss); for the unregularised ones the KL term is added on top by <see cref="KlRegularizedLoss"/>.</summary>
public static class PolicyLosses
{
    private static readonly PolicyLoss[] All =
    [
        new("clip-higher", "App. A", "PPO clip with DAPO's asymmetric ε_low/ε_high as a binary mask", null,
            (x, o) => GrpoClipHigher.Compute(x.Logp, x.OldLogp, x.Advantages, o.EpsLow, o.EpsHigh)),
        new("gspo", "GSPO (token form)", "sequence-level ratio s_i = exp(mean_t log(π_θ/π_old)), clipped per sequence with ε_low/ε_high; token gradient sg(s_i)·A·∇log π_θ",
            null, (x, o) => Gspo.Compute(x, o)) { TokenLocal = false },
        new("cispo", "MiniMax-M1 CISPO", "REINFORCE weighted by the clipped stop-gradient IS weight sg(clip(w, 1−ε_low, 1+ε_high))·A·∇log π_θ; no token is dropped",
            null, (x, o) => Cispo.Compute(x, o)),
        .. RpgObjectives.All,
        .. GrpoK3.All,
    ];

    public static IReadOnlyList<PolicyLoss> Registered => All;

    public static IReadOnlyList<string> Names { get; } = All.Select(a => a.Name).ToArray();

    public static PolicyLoss Get(string name) =>
        All.FirstOrDefault(a => a.Name == name) ?? throw new UserError($"policy_loss must be one of {string.Join(", ", Names)}, got '{name}'.");
}

using EmaPg.Common;
using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>Settings a policy loss may read.</summary>
public sealed record PolicyLossOptions(double EpsLow = GrpoClipHigher.DefaultEpsLow, double EpsHigh = GrpoClipHigher.DefaultEpsHigh);

/// <summary>
/// A policy-gradient surrogate: from log π_θ [B,L] (differentiable), log π_old [B,L] and advantages [B] or [B,L] to the
/// per-token objective to maximise [B,L] and the mask of tokens it clipped [B,L] (1 = kept).
/// </summary>
public sealed record PolicyLoss(string Name, string Description, Func<Tensor, Tensor, Tensor, PolicyLossOptions, (Tensor Objective, Tensor Mask)> Compute);

/// <summary>Every policy loss by name (the config's policy_loss); the KL term is added on top by <see cref="KlRegularizedLoss"/>.</summary>
public static class PolicyLosses
{
    private static readonly PolicyLoss[] All =
    [
        new("clip-higher", "PPO clip with DAPO's asymmetric ε_low/ε_high as a binary mask (App. A)",
            (logp, old, adv, o) => GrpoClipHigher.Compute(logp, old, adv, o.EpsLow, o.EpsHigh)),
    ];

    public static IReadOnlyList<string> Names { get; } = All.Select(a => a.Name).ToArray();

    public static PolicyLoss Get(string name) =>
        All.FirstOrDefault(a => a.Name == name) ?? throw new UserError($"policy_loss must be one of {string.Join(", ", Names)}, got '{name}'.");
}

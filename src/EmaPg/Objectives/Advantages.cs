using EmaPg.Common;
using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>An advantage estimator: per-rollout rewards [B·N], grouped consecutively by prompt, to advantages [B·N].</summary>
public sealed record AdvantageEstimator(string Name, string Description, Func<Tensor, int, Tensor> Compute);

/// <summary>Every advantage estimator by name (the config's advantage_norm), like <see cref="Divergences.Estimators"/>.</summary>
public static class Advantages
{
    private static readonly AdvantageEstimator[] All =
    [
        new("group", "(R − group mean) / group std (N − 1), per prompt (App. A, GRPO)", (r, n) => GroupAdvantage.Compute(r, n)),
        new("global", "R − group mean, then a z-score over the whole batch (App. B, REINFORCE++)", (r, n) => GlobalAdvantageNormalization.Compute(r, n)),
        new("none", "R − group mean, not rescaled (Dr. GRPO)", (r, n) => GroupAdvantage.Compute(r, n, divideByStd: false)),
    ];

    public static IReadOnlyList<string> Names { get; } = All.Select(a => a.Name).ToArray();

    /// <summary>
    /// Sequence-level KL in the reward (eqs. 10–12; verl's use_kl_in_reward, WARP): advantages of R − coef·Σ_t log(π_old/π_ref)
    /// over the response tokens instead of R. Its gradient reaches the policy only through the score function (eq. 12).
    /// </summary>
    /// <param name="rewards">[B] rewards; <paramref name="oldLogp"/>, <paramref name="anchorLogp"/>, <paramref name="mask"/> [B, L].</param>
    public static Tensor WithSequenceKl(AdvantageEstimator estimator, Tensor rewards, Tensor oldLogp, Tensor anchorLogp, Tensor mask, double coef, int groupSize) =>
        estimator.Compute(Divergences.SequenceKl.PenalisedReward(rewards, oldLogp, anchorLogp, mask.to_type(oldLogp.dtype), coef), groupSize);

    public static AdvantageEstimator Get(string name) =>
        All.FirstOrDefault(a => a.Name == name) ?? throw new UserError($"advantage_norm must be one of {string.Join(", ", Names)}, got '{name}'.");
}

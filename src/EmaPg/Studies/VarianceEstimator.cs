using EmaPg.Divergences;

namespace EmaPg.Studies;

/// <summary>
/// An estimator compared in the Top-k variance study (App. G), by its study label and its registry name.
/// <see cref="UsesK"/> is false for the fully sampled estimator (k = 0: K4 over the whole vocabulary).
/// </summary>
public sealed record VarianceEstimator(string Label, string RegistryName, bool UsesK, string Description)
{
    public static readonly VarianceEstimator Sampled = new("sampled", "k4", false, "K4 over the whole vocabulary (k = 0)");
    public static readonly VarianceEstimator Truncated = new("truncated", "truncated-reverse", true, "exact head on the top-k of π, no tail (biased)");
    public static readonly VarianceEstimator TopkPaper = new("topk-paper", "topk-reverse-paper", true, "Algorithm 1 as written (gradient biased by ∇M_q)");
    public static readonly VarianceEstimator Topk = new("topk", "topk-reverse", true, "Top-k reverse KL, corrected (library default, unbiased)");

    public static IReadOnlyList<VarianceEstimator> All { get; } = [Sampled, Truncated, TopkPaper, Topk];

    public DivergenceEstimator Resolve() => Estimators.Get(RegistryName);
}

using EmaPg.Common;
using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>Where the index set q of a Top-k estimator comes from (App. A lines 7–11).</summary>
public enum IndexSource
{
    /// <summary>No index set.</summary>
    None,
    /// <summary>Top-k of the sampling policy π_θold (reverse KL: the expectation is under π_θ).</summary>
    SamplingPolicy,
    /// <summary>Top-k of the anchor π_ref (forward KL: the expectation is under π_ref).</summary>
    Anchor,
}

/// <summary>
/// A named per-token divergence estimator: what it targets, what inputs it needs, and the function.
/// <see cref="Compute"/> returns one estimate per token, [N]; aggregation over tokens is the objective's job.
/// </summary>
public sealed class DivergenceEstimator
{
    public required string Name { get; init; }
    public required FDivergence Target { get; init; }
    public required string Equation { get; init; }
    public required string Description { get; init; }
    public IndexSource Index { get; init; } = IndexSource.None;
    public bool NeedsFullLogits { get; init; }
    /// <summary>True when the estimate depends on the sampled token (and so carries the off-policy weight s).</summary>
    public bool Sampled { get; init; }
    public required Func<KlInputs, EstimatorOptions, Tensor> Fn { private get; init; }

    public Tensor Compute(KlInputs x, EstimatorOptions? options = null, bool checkFinite = true)
    {
        var o = options ?? EstimatorOptions.Default;
        if (checkFinite) x.EnsureFinite();
        return Fn(x, o);
    }
}

/// <summary>
/// Registry of every estimator by name, in the spirit of verl's core_algos: the trainer, the audit, the
/// studies and the benchmark all look estimators up here, so a name means the same function everywhere.
/// </summary>
public static class Estimators
{
    private static Tensor S(KlInputs x, EstimatorOptions o) => Ratios.ImportanceWeight(x.PolicyLogp, x.SamplingLogp, o);

    private static DivergenceEstimator SampledKl(string name, FDivergence target, string eq, string desc, Func<Tensor, Tensor, double, Tensor> f) => new()
    {
        Name = name, Target = target, Equation = eq, Description = desc, Sampled = true,
        Fn = (x, o) => S(x, o) * f(x.PolicyLogp, x.AnchorLogp, o.LogRatioClamp),
    };

    private delegate Tensor TopkFn(Tensor lp, Tensor la, Tensor lpq, Tensor laq, Tensor inQ, Tensor s, double clamp);

    private static DivergenceEstimator Topk(string name, FDivergence target, IndexSource src, string eq, string desc, TopkFn f) => new()
    {
        Name = name, Target = target, Index = src, Equation = eq, Description = desc, Sampled = true,
        Fn = (x, o) =>
        {
            var lpq = x.RequireQ(name, out var laq, out var inQ);
            return f(x.PolicyLogp, x.AnchorLogp, lpq, laq, inQ, S(x, o), o.LogRatioClamp);
        },
    };

    private static DivergenceEstimator Truncated(string name, FDivergence target, IndexSource src, string eq, string desc, Func<Tensor, Tensor, double, Tensor> f) => new()
    {
        Name = name, Target = target, Index = src, Equation = eq, Description = desc,
        Fn = (x, o) => f(x.RequireQ(name, out var laq, out _), laq, o.LogRatioClamp),
    };

    private static DivergenceEstimator Exact(string name, FDivergence target, string eq, string desc, Func<Tensor, Tensor, Tensor> f) => new()
    {
        Name = name, Target = target, Equation = eq, Description = desc, NeedsFullLogits = true,
        Fn = (x, o) => { var (p, a) = x.RequireLogits(name); return f(p, a); },
    };

    /// <summary>All estimators, the f-divergence ones for the given α.</summary>
    public static IReadOnlyList<DivergenceEstimator> All(double alpha = 0.5)
    {
        var rk = FDivergence.ReverseKl;
        var fk = FDivergence.ForwardKl;
        var list = new List<DivergenceEstimator>
        {
            Exact("exact-reverse", rk, "eq. 18", "Σ_j π_θ log(π_θ/π_ref) over the full vocabulary", ExactReverseKl.Compute),
            Exact("exact-forward", fk, "App. F.1", "Σ_j π_ref log(π_ref/π_θ) over the full vocabulary", ExactForwardKl.Compute),
            SampledKl("k1", rk, "§5.2", "−log w", K1.Compute),
            SampledKl("k2", rk, "§5.2", "(log w)²/2", K2.Compute),
            SampledKl("k3", rk, "§5.2", "−log w + w − 1 (GRPO's)", K3.Compute),
            SampledKl("k3pp", rk, "eq. 22", "r·(−log w + w − 1)", K3PlusPlus.Compute),
            SampledKl("k4", rk, "eq. 23", "r·sg(−log w)", K4.Compute),
            SampledKl("k5", fk, "eq. 24", "sg(w) log w + log r", K5.Compute),
            Truncated("truncated-reverse", rk, IndexSource.SamplingPolicy, "§5.3 KL_trun", "exact head on q, no tail", TruncatedReverseKl.Compute),
            Truncated("truncated-forward", fk, IndexSource.Anchor, "§5.3 FKL_trun", "exact head on q, no tail", TruncatedForwardKl.Compute),
            Topk("topk-reverse-paper", rk, IndexSource.SamplingPolicy, "Alg. 1, eq. 26", "KL_trun + s·1(p∉q)·K4, as written", TopkReverseKlPaper.Compute),
            Topk("topk-forward-paper", fk, IndexSource.Anchor, "Alg. 2, eq. 27", "FKL_trun + s·1(p∉q)·K5, as written", TopkForwardKlPaper.Compute),
            Topk("topk-reverse", rk, IndexSource.SamplingPolicy, "eq. 26, corrected", "Σ_q π_θ·sg(ℓ) + s·1(p∉q)·K4", TopkReverseKl.Compute),
            Topk("topk-forward", fk, IndexSource.Anchor, "eq. 27, corrected", "FKL_trun + (M_q − sg M_q) + s·1(p∉q)·K5", TopkForwardKl.Compute),
        };
        foreach (var f in FDivergence.Table5(alpha))
        {
            list.Add(Exact($"exact-{f.Name}", f, "eq. 109", $"exact {f.Display}", (p, a) => ExactFDivergence.Compute(f, p, a)));
            list.Add(SampledKl($"kf-{f.Name}", f, "eq. 115", $"Kf⁺⁺ for {f.Display}", (lp, la, c) => SampledFDivergence.Compute(f, lp, la, c)));
            list.Add(Topk($"topk-{f.Name}", f, IndexSource.SamplingPolicy, "eq. 122", $"Top-k {f.Display}",
                (lp, la, lpq, laq, inQ, s, c) => TopkFDivergence.Compute(f, lp, la, lpq, laq, inQ, s, c)));
        }
        return list;
    }

    public static IReadOnlyList<string> Names => All().Select(e => e.Name).ToList();

    /// <summary>Looks an estimator up by name; an unknown name is a user error listing the valid ones.</summary>
    public static DivergenceEstimator Get(string name, double alpha = 0.5) =>
        All(alpha).FirstOrDefault(e => e.Name == name)
        ?? throw new UserError($"unknown KL estimator '{name}'; valid: {string.Join(", ", Names)}.");
}

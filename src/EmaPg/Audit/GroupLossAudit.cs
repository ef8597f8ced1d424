using System.Globalization;
using EmaPg.Divergences;
using EmaPg.Objectives;
using static TorchSharp.torch;

namespace EmaPg.Audit;

/// <summary>
/// One line of the group-loss audit: a loss of App. J/K, how Z(x) is obtained (<see cref="GroupLossAudit.GroupBaseline"/> for
/// App. J's group mean, <see cref="GroupLossAudit.EStep"/> for App. K's group estimate Ẑ, <see cref="GroupLossAudit.ExactZ"/>),
/// the relative error of its exact expected gradient against the appendix's claim, and what that gradient equals instead:
/// a named divergence's gradient, or RewardCoefficient·∇E_π[R] + KlCoefficient·∇KL(π_θ‖π_ref) fitted exactly (both null when neither).
/// </summary>
public sealed record GroupLossAuditRow(
    string Loss, string Equation, string Claim, string ClaimSource, string Partition, int GroupSize,
    double GradientRelError, bool AsClaimed, string GradientEquals, double? RewardCoefficient, double? KlCoefficient);

/// <summary>
/// Exact expectation of App. J/K's group losses: every group (y_1..y_N) ∈ V^N of one-token responses is enumerated and
/// weighted by Π_i π_sampling(y_i), in float64; one backward pass gives E[∇_z loss] exactly. Returns R(y) (= R/β of App. J)
/// are standard normal per token; π* ∝ π_ref·e^R is the target. The claims are the appendix's (<see cref="GroupLoss.Claim"/>).
/// </summary>
public static class GroupLossAudit
{
    public const string GroupBaseline = "group mean V", EStep = "E-step Ẑ", ExactZ = "exact Z";

    /// <summary>V^N groups at most: the enumeration is one [V^N, N] batch.</summary>
    public const int MaxGroups = 1 << 16;

    private static double[] Grad(Tensor z) => z.grad!.data<double>().ToArray();

    /// <summary>E_{groups∼π_sampling}[∇_z loss], exactly; <paramref name="logZ"/> = the exact log Z, or null for the loss's own estimate.</summary>
    public static double[] ExpectedGradient(GroupLoss loss, CategoricalProblem p, double[] returns, int groupSize, double? logZ = null)
    {
        int v = p.Vocab;
        long groups = (long)Math.Pow(v, groupSize);
        if (groups > MaxGroups) throw new ArgumentOutOfRangeException(nameof(groupSize), $"|V|^N = {v}^{groupSize} exceeds {MaxGroups} groups.");
        using var scope = NewDisposeScope();
        var ids = new long[groups, groupSize];
        var weight = new double[groups];
        var ps = p.SamplingLogits.Select(Math.Exp).ToArray();
        double total = ps.Sum();
        for (long t = 0; t < groups; t++)
        {
            weight[t] = 1;
            long rest = t;
            for (int i = 0; i < groupSize; i++, rest /= v) { ids[t, i] = rest % v; weight[t] *= ps[rest % v] / total; }
        }
        var idx = tensor(ids);
        var z = tensor(p.PolicyLogits, dtype: float64).requires_grad_(true);
        var x = new GroupLossInputs
        {
            Logp = z.log_softmax(0)[idx], AnchorLogp = tensor(p.AnchorLogits, dtype: float64).log_softmax(0)[idx],
            SamplingLogp = tensor(p.SamplingLogits, dtype: float64).log_softmax(0)[idx], Returns = tensor(returns, dtype: float64)[idx],
            LogZ = logZ is null ? null : full(groups, logZ.Value, dtype: float64),
        };
        (tensor(weight, dtype: float64) * loss.Compute(x)).sum().backward();
        return Grad(z);
    }

    /// <summary>log Z = log Σ_y π_ref(y)·e^{R(y)}.</summary>
    public static double LogZ(CategoricalProblem p, double[] returns)
    {
        using var scope = NewDisposeScope();
        return (tensor(p.AnchorLogits, dtype: float64).log_softmax(0) + tensor(returns, dtype: float64)).logsumexp(0).item<double>();
    }

    /// <summary>∇_z D_f(π_θ‖π*) (policyFirst) or ∇_z D_f(π*‖π_θ), by autograd of the closed-form value Σ Q·f(P/Q).</summary>
    public static double[] DivergenceGradient(FDivergence f, bool policyFirst, CategoricalProblem p, double[] returns)
    {
        using var scope = NewDisposeScope();
        var z = tensor(p.PolicyLogits, dtype: float64).requires_grad_(true);
        var lp = z.log_softmax(0);
        var ls = (tensor(p.AnchorLogits, dtype: float64).log_softmax(0) + tensor(returns, dtype: float64)).log_softmax(0);
        var d = policyFirst ? (ls.exp() * f.FOfLogT(lp - ls)).sum() : (lp.exp() * f.FOfLogT(ls - lp)).sum();
        d.backward();
        return Grad(z);
    }

    /// <summary>The claim's gradient: Σ_terms c·(1/N)^{PerN}·∇D.</summary>
    public static double[] ClaimGradient(GroupLossClaim claim, CategoricalProblem p, double[] returns, int groupSize)
    {
        var g = new double[p.Vocab];
        foreach (var t in claim.Terms)
        {
            double c = t.Coefficient / (t.PerN ? groupSize : 1);
            var d = DivergenceGradient(t.F, t.PolicyFirst, p, returns);
            for (int i = 0; i < g.Length; i++) g[i] += c * d[i];
        }
        return g;
    }

    /// <summary>∇_z E_π[R] = π·(R − E_π[R]).</summary>
    private static double[] RewardGradient(CategoricalProblem p, double[] r)
    {
        using var scope = NewDisposeScope();
        var pi = tensor(p.PolicyLogits, dtype: float64).softmax(0);
        var a = tensor(r, dtype: float64);
        return (pi * (a - (pi * a).sum())).data<double>().ToArray();
    }

    /// <summary>
    /// The least-squares (a, b) of g ≈ a·u + b·v and the fit's relative residual; no fit (residual ∞) when u and v are
    /// (nearly) parallel, as they always are at |V| = 2, where a and b are not determined.
    /// </summary>
    private static (double A, double B, double RelResidual) Fit(double[] g, double[] u, double[] v)
    {
        double uu = 0, uv = 0, vv = 0, gu = 0, gv = 0;
        for (int i = 0; i < g.Length; i++) { uu += u[i] * u[i]; uv += u[i] * v[i]; vv += v[i] * v[i]; gu += g[i] * u[i]; gv += g[i] * v[i]; }
        double det = uu * vv - uv * uv;
        if (!(det > 1e-12 * uu * vv)) return (double.NaN, double.NaN, double.PositiveInfinity);
        double a = (gu * vv - gv * uv) / det, b = (gv * uu - gu * uv) / det;
        return (a, b, ExactExpectation.RelativeError(g.Select((_, i) => a * u[i] + b * v[i]).ToArray(), g));
    }

    /// <summary>The audit of every loss of <paramref name="losses"/> (default: all registered) with groups of <paramref name="groupSize"/>.</summary>
    public static IReadOnlyList<GroupLossAuditRow> Run(CategoricalProblem p, int seed, int groupSize = 2, double alpha = 0.5, IEnumerable<GroupLoss>? losses = null)
    {
        var r = PolicyLossAudit.Advantages(p.Vocab, seed);
        double logZ = LogZ(p, r);
        var gr = RewardGradient(p, r);
        var gkl = ExactExpectation.ClosedForm(FDivergence.ReverseKl, p).Gradient;
        var kls = new[] { (true, FDivergence.ReverseKl), (false, FDivergence.ReverseKl) }
            .Select(t => new GroupLossClaimTerm(1, false, t.Item2, t.Item1)).ToList();
        var rows = new List<GroupLossAuditRow>();
        foreach (var loss in losses ?? GroupLosses.All(alpha))
        {
            var claim = ClaimGradient(loss.Claim, p, r, groupSize);
            // Named candidates: the claim, the two KLs to π*, and the M-step's own D_f in both directions.
            var named = new List<(string Name, double[] G)> { (loss.Claim.Display, claim) };
            var terms = kls.Concat(loss.Claim.Terms.Where(t => !t.PerN && t.Coefficient == 1).SelectMany(t => new[] { t, t with { PolicyFirst = !t.PolicyFirst } }));
            named.AddRange(terms.Select(t => (t.Divergence, DivergenceGradient(t.F, t.PolicyFirst, p, r))));
            var partitions = loss.UsesZ ? new[] { (EStep, (double?)null), (ExactZ, logZ) } : new[] { (GroupBaseline, (double?)null) };
            foreach (var (partition, z) in partitions)
            {
                var got = ExpectedGradient(loss, p, r, groupSize, z);
                double err = ExactExpectation.RelativeError(got, claim);
                var match = named.FirstOrDefault(c => ExactExpectation.RelativeError(got, c.G) < EstimatorAudit.Tolerance);
                var (a, b, res) = Fit(got, gr, gkl);
                bool fits = res < EstimatorAudit.Tolerance;
                string equals = match.Name ?? (fits ? $"{a.ToString("G6", CultureInfo.InvariantCulture)}·∇E_π[R] + {b.ToString("G6", CultureInfo.InvariantCulture)}·∇KL(π_θ‖π_ref)" : "none");
                rows.Add(new GroupLossAuditRow(loss.Name, loss.Equation, loss.Claim.Display, loss.Claim.Source, partition, groupSize, err,
                    err < EstimatorAudit.Tolerance, equals, fits ? a : null, fits ? b : null));
            }
        }
        return rows;
    }
}

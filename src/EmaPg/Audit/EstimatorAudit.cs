using EmaPg.Divergences;

namespace EmaPg.Audit;

/// <summary>One line of the audit: an estimator's exact bias in value and in gradient against its target.</summary>
public sealed record AuditRow(
    string Estimator, string Target, string Equation, double ExpectedValue, double TargetValue,
    double ValueRelError, double GradientRelError, bool ValueUnbiased, bool GradientUnbiased, string GradientMatches);

/// <summary>
/// The exact-expectation audit behind `emapg audit`: every registered estimator against the closed form
/// of its target, on one random categorical problem. "Unbiased" means relative error below
/// <see cref="Tolerance"/>, far above float64 round-off (~1e-15) and far below any real bias.
/// </summary>
public static class EstimatorAudit
{
    public const double Tolerance = 1e-9;

    public static IReadOnlyList<AuditRow> Run(CategoricalProblem p, int k, EstimatorOptions o, IEnumerable<DivergenceEstimator>? estimators = null)
    {
        var rows = new List<AuditRow>();
        var closed = new Dictionary<string, ExactExpectation.Moments>();
        ExactExpectation.Moments Closed(FDivergence f) =>
            closed.TryGetValue(f.Name, out var m) ? m : closed[f.Name] = ExactExpectation.ClosedForm(f, p);
        foreach (var e in estimators ?? Estimators.All(o.Alpha))
        {
            var got = ExactExpectation.Expect(e, p, k, o);
            var want = Closed(e.Target);
            double ve = ExactExpectation.RelativeError(got.Value, want.Value);
            double ge = ExactExpectation.RelativeError(got.Gradient, want.Gradient);
            rows.Add(new AuditRow(e.Name, e.Target.Display, e.Equation, got.Value, want.Value, ve, ge,
                ve < Tolerance, ge < Tolerance, GradientMatch(got.Gradient, e.Target, Closed)));
        }
        return rows;
    }

    /// <summary>Names the divergence whose exact gradient the estimator's expected gradient equals, if any.</summary>
    private static string GradientMatch(double[] g, FDivergence target, Func<FDivergence, ExactExpectation.Moments> closed)
    {
        foreach (var f in new[] { target, FDivergence.ReverseKl, FDivergence.ForwardKl })
            if (ExactExpectation.RelativeError(g, closed(f).Gradient) < Tolerance) return f.Display;
        if (Math.Sqrt(g.Sum(x => x * x)) < 1e-12) return "0";
        return "none";
    }
}

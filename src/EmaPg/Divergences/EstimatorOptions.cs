using EmaPg.Common;

namespace EmaPg.Divergences;

/// <summary>
/// Knobs shared by the estimators. [SMin, SMax] clips the off-policy weight s (Alg. 1–2 line 4; the paper
/// uses [0, 10] for reverse and [0, 2.5] for forward KL; SMin = SMax = 1 switches off-policy correction off).
/// </summary>
public sealed record EstimatorOptions
{
    public double SMin { get; init; } = 0.0;
    public double SMax { get; init; } = double.PositiveInfinity;
    /// <summary>α of the α-divergence (Table 5); α ∉ {0, 1}.</summary>
    public double Alpha { get; init; } = 0.5;
    /// <summary>Bound on |log-ratio| before exponentiation (see <see cref="Ratios"/>).</summary>
    public double LogRatioClamp { get; init; } = 20.0;

    public static readonly EstimatorOptions Default = new();

    public EstimatorOptions Validated()
    {
        Check.Range("s_min", SMin, 0, double.PositiveInfinity);
        Check.Range("s_max", SMax, SMin, double.PositiveInfinity);
        if (Alpha == 0 || Alpha == 1 || double.IsNaN(Alpha) || double.IsInfinity(Alpha))
            throw new UserError($"alpha must be a finite real number other than 0 and 1, got {Alpha}.");
        Check.Range("log_ratio_clamp", LogRatioClamp, 0, 700, minInclusive: false);
        return this;
    }
}

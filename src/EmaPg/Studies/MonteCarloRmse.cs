namespace EmaPg.Studies;

/// <summary>
/// Running Monte-Carlo estimate of an RMSE, sqrt(E‖ĝ − g‖²), from i.i.d. squared errors, with the relative
/// standard error of the RMSE estimate by the delta method: se(√m̂)/√m̂ ≈ ½·sd(e²)/(m̂·√n).
/// </summary>
public sealed class MonteCarloRmse
{
    private double _sum, _sumSq;
    public int Count { get; private set; }

    public void Add(IEnumerable<double> squaredErrors)
    {
        foreach (var e in squaredErrors) { _sum += e; _sumSq += e * e; Count++; }
    }

    public double MeanSquaredError => Count == 0 ? double.NaN : _sum / Count;
    public double Rmse => Math.Sqrt(MeanSquaredError);

    /// <summary>Relative standard error of <see cref="Rmse"/>; 0 when every squared error is the same (a deterministic estimator).</summary>
    public double RelativeStandardError
    {
        get
        {
            if (Count < 2) return double.PositiveInfinity;
            double m = _sum / Count;
            if (m <= 0) return 0;
            double var = Math.Max(0, (_sumSq - Count * m * m) / (Count - 1));
            double rel = 0.5 * Math.Sqrt(var) / (m * Math.Sqrt(Count));
            return rel < 1e-12 ? 0 : rel;
        }
    }
}

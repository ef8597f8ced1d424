namespace EmaPg.Stability;

/// <summary>
/// The EMA-PG stability margin αβλ̂_max against the boundaries η and 1 + η of eq. 9 (§4's order: the EMA mixes in θ
/// before every step; the trainer's schedule has other boundaries, <see cref="TrainerSchedule"/>). With λ̂_max the
/// Fisher-trace bound (eq. 28) the margin is an upper bound too: "monotone" is guaranteed (the true margin is no larger),
/// "oscillatory" guarantees only stability (the true margin may be below η, i.e. monotone), "unstable" may be a false alarm.
/// </summary>
public sealed record StabilityMargin(double Alpha, double Beta, double Eta, double LambdaMaxBound, double Margin, StabilityRegime Regime)
{
    /// <summary>How far the margin is from the instability boundary, 1 + η − αβλ̂ (&gt; 0 is guaranteed stable).</summary>
    public double HeadroomToUnstable => 1 + Eta - Margin;
    /// <summary>How far the margin is from the oscillation boundary, η − αβλ̂ (≥ 0 is guaranteed non-oscillatory).</summary>
    public double HeadroomToOscillation => Eta - Margin;
    /// <summary>The largest β that keeps the bound below the instability boundary: (1 + η)/(αλ̂).</summary>
    public double MaxStableBeta => (1 + Eta) / (Alpha * LambdaMaxBound);

    public static StabilityMargin Compute(double alpha, double beta, double eta, double lambdaMaxBound)
    {
        if (!(alpha > 0) || !(beta >= 0) || !(eta >= 0 && eta < 1) || !(lambdaMaxBound >= 0))
            throw new ArgumentException($"need α > 0, β ≥ 0, η ∈ [0, 1), λ̂ ≥ 0; got α = {alpha}, β = {beta}, η = {eta}, λ̂ = {lambdaMaxBound}");
        double m = alpha * beta * lambdaMaxBound;
        return new StabilityMargin(alpha, beta, eta, lambdaMaxBound, m, StabilityLemma.Predict(m, eta));
    }

    public static StabilityMargin Compute(double alpha, double beta, double eta, FisherTraceEstimate trace) =>
        Compute(alpha, beta, eta, trace.LambdaMaxUpperBound);

    public override string ToString() =>
        $"αβλ̂_max = {Margin:G4} vs η = {Eta:G4}, 1 + η = {1 + Eta:G4}: {StabilityLemma.Describe(Regime)}";
}

namespace EmaPg.Stability;

/// <summary>The three regimes of the EMA lag dynamics (Lemma 4.2, eq. 9).</summary>
public enum StabilityRegime
{
    /// <summary>Stable, non-oscillatory: αβλ_max ≤ η; every lag mode decays monotonically.</summary>
    Monotone,
    /// <summary>Stable, oscillatory: η &lt; αβλ_max &lt; 1 + η; high-curvature modes flip sign as they decay.</summary>
    Oscillatory,
    /// <summary>Unstable: αβλ_max ≥ 1 + η; the top mode does not decay (|χ| ≥ 1).</summary>
    Unstable,
}

/// <summary>What Lemma 4.2 predicts from the stability margin αβλ_max (eq. 9, App. C.4).</summary>
public static class StabilityLemma
{
    /// <summary>
    /// The regime of eq. 9. A margin within <paramref name="relTolerance"/> (relative) of a boundary counts as on
    /// it, so that a sweep point placed exactly at αβλ_max = η or 1 + η is not moved across by round-off in α·β·λ.
    /// </summary>
    public static StabilityRegime Predict(double alphaBetaLambdaMax, double eta, double relTolerance = 1e-9) =>
        alphaBetaLambdaMax <= eta * (1 + relTolerance) ? StabilityRegime.Monotone
        : alphaBetaLambdaMax < (1 + eta) * (1 - relTolerance) ? StabilityRegime.Oscillatory
        : StabilityRegime.Unstable;

    public static string Describe(StabilityRegime r) => r switch
    {
        StabilityRegime.Monotone => "stable, monotone",
        StabilityRegime.Oscillatory => "stable, oscillatory",
        _ => "unstable",
    };

    public static string Label(StabilityRegime r) => r switch
    {
        StabilityRegime.Monotone => "monotone",
        StabilityRegime.Oscillatory => "oscillatory",
        _ => "unstable",
    };
}

using EmaPg.Stability;
namespace EmaPg.Studies;

/// <summary>What a simulated trajectory shows, measured on the trajectory alone (no formula of the lemma).</summary>
public sealed record TrajectoryShape(StabilityRegime Regime, double DecayRate, int SignFlipMode, string Evidence);

/// <summary>
/// Classifies a simulated lag trajectory into the regimes of eq. 9 from the trajectory itself:
/// the lag increments Δ_t = δ_{t+1} − δ_t (g cancels in them) are measured in F's eigenbasis.
/// <list type="bullet">
/// <item>does not decay: the simulation overflowed, or it never converged and ‖Δ_t‖ stopped shrinking
/// (empirical rate ‖Δ_T‖/‖Δ_{T/2}‖ per step ≥ 1 − 1e-9) → unstable;</item>
/// <item>decays with sign flips: some eigen-component of Δ_t alternates sign on consecutive steps (twice in a
/// row, while above round-off) → oscillatory;</item>
/// <item>otherwise the lag approaches its limit monotonically in every eigen-direction → monotone.</item>
/// </list>
/// </summary>
public static class TrajectoryClassifier
{
    public static TrajectoryShape Classify(EmaProblem p, EmaTrajectory tr)
    {
        var lags = tr.Lag;
        int n = lags.Count - 1; // number of increments
        var inc = new List<double[]>(n);
        for (int t = 0; t < n; t++)
        {
            var d = new double[p.Dim];
            for (int i = 0; i < p.Dim; i++) d[i] = lags[t + 1][i] - lags[t][i];
            inc.Add(p.Project(d));
        }
        int half = n / 2;
        double last = EmaDynamics.Norm(inc[n - 1]), mid = EmaDynamics.Norm(inc[half]);
        double rate = n - 1 > half && mid > 0 ? Math.Pow(last / mid, 1.0 / (n - 1 - half)) : 0;
        if (tr.Overflowed)
            return new TrajectoryShape(StabilityRegime.Unstable, rate, -1, $"lag overflowed after {tr.Steps} steps");
        if (!tr.Converged && rate >= 1 - 1e-9)
            return new TrajectoryShape(StabilityRegime.Unstable, rate, -1, $"lag increments stopped shrinking over {tr.Steps} steps (rate {rate:F6}/step)");

        // Sign flips per eigen-direction, only while the component is well above round-off.
        for (int i = 0; i < p.Dim; i++)
        {
            double peak = inc.Max(v => Math.Abs(v[i]));
            if (peak == 0) continue;
            double floor = 1e-9 * peak;
            int run = 0;
            for (int t = 0; t + 1 < n; t++)
            {
                double a = inc[t][i], b = inc[t + 1][i];
                if (Math.Abs(a) > floor && Math.Abs(b) > floor && Math.Sign(a) != Math.Sign(b))
                {
                    if (++run >= 2)
                        return new TrajectoryShape(StabilityRegime.Oscillatory, rate, i, $"mode {i} (λ = {p.Lambdas[i]:G4}) alternates sign while decaying");
                }
                else run = 0;
            }
        }
        return new TrajectoryShape(StabilityRegime.Monotone, rate, -1, tr.Converged ? $"every mode converges without sign flips in {tr.Steps} steps" : $"decaying without sign flips (not converged in {tr.Steps} steps)");
    }
}

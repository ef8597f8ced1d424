using EmaPg.Stability;
using System.Globalization;
using System.Text;

namespace EmaPg.Studies;

/// <summary>Settings of the EMA stability study: the problem, α, and the sweep over η and x = αβλ_max/η.</summary>
public sealed record EmaStabilityConfig
{
    /// <summary>Diagonal Fisher spectrum; ignored when <see cref="Dim"/> &gt; 0.</summary>
    public IReadOnlyList<double> Lambdas { get; init; } = [1.0, 0.5, 0.2, 0.1, 0.05];
    /// <summary>Dimension of a random Wishart Fisher A·Aᵀ/d; 0 uses <see cref="Lambdas"/>.</summary>
    public int Dim { get; init; }
    public int Seed { get; init; }
    public double Alpha { get; init; } = 0.01;
    public IReadOnlyList<double> Etas { get; init; } = [0.9, 0.99];
    /// <summary>x = αβλ_max/η values; null: <see cref="DefaultRatios"/> for each η (β = xη/(αλ_max)).</summary>
    public IReadOnlyList<double>? Ratios { get; init; }
    public int MaxSteps { get; init; } = 20_000;
    /// <summary>Optimiser steps between anchor updates S for the trainer-schedule check (T_ema·Λ·minibatches; the default job's S = 10).</summary>
    public IReadOnlyList<int> ScheduleSteps { get; init; } = [1, 3, 10];
    /// <summary>Window k of the Lemma 4.1 check.</summary>
    public int LemmaWindow { get; init; } = 25;

    /// <summary>Sweep spanning the three regimes, including both boundaries x = 1 and x = (1 + η)/η.</summary>
    public static IReadOnlyList<double> DefaultRatios(double eta)
    {
        double edge = (1 + eta) / eta;
        return [0.25, 0.5, 0.75, 1.0, 1 + 0.25 * (edge - 1), 1 + 0.5 * (edge - 1), 1 + 0.75 * (edge - 1), 1 + 0.95 * (edge - 1), edge, 1.1 * edge, 1.3 * edge];
    }

    public EmaProblem Problem() => Dim > 0 ? EmaProblem.RandomPsd(Dim, Seed) : EmaProblem.Diagonal(Lambdas, Seed);
}

/// <summary>One run of the sweep: simulated vs predicted regime, and the steady-state checks (NaN when unstable).</summary>
public sealed record EmaStabilityRow(
    double Eta, double Ratio, double AlphaBetaLambdaMax, double Alpha, double Beta, double ChiMin,
    StabilityRegime Predicted, StabilityRegime Simulated, string Evidence, int Steps, double DecayRate,
    double LagNorm, double LagEq62Norm, double LagEq62RelError, double LagEq63RelError,
    double Kl, double KlEq67, double KlRelError, double Lemma41RelError)
{
    public bool Agrees => Predicted == Simulated;
}

/// <summary>
/// One run of the trainer-schedule check: m = αβλ_max at <see cref="Ratio"/> times the boundary 1 + η^(−1/S), the lag's
/// growth per anchor update over the last cycles, and whether the simulation's stability matches <see cref="TrainerSchedule"/>.
/// </summary>
public sealed record EmaScheduleRow(double Eta, int Steps, double Boundary, double Ratio, double AlphaBetaLambdaMax, double GrowthPerCycle, bool PredictedStable, bool SimulatedStable)
{
    public bool Agrees => PredictedStable == SimulatedStable;
}

public sealed record EmaStabilityResult(EmaStabilityConfig Config, EmaProblem Problem, IReadOnlyList<EmaStabilityRow> Rows, IReadOnlyList<EmaTrajectory> Trajectories,
    IReadOnlyList<EmaScheduleRow> Schedule)
{
    public int Disagreements => Rows.Count(r => !r.Agrees) + Schedule.Count(r => !r.Agrees);
}

/// <summary>
/// The EMA-anchor stability study (§4, Lemmas 4.1–4.2, App. C): simulate the linearised dynamics over a
/// sweep of αβλ_max/η, classify each trajectory from the simulation, and compare with the lemma's regime,
/// the steady lag (eq. 62–63) and the quasi-steady KL (eq. 67).
/// </summary>
public static class EmaStabilityStudy
{
    public const string CsvFile = "ema-stability.csv";
    public const string CsvHeader = "eta,ratio,alpha_beta_lambda_max,alpha,beta,chi_min,predicted,simulated,agree,steps,decay_rate,lag_norm,lag_eq62_norm,lag_eq62_rel_error,lag_eq63_rel_error,kl,kl_eq67,kl_rel_error,lemma41_rel_error,evidence";

    public static EmaStabilityResult Run(EmaStabilityConfig c)
    {
        var p = c.Problem();
        var rows = new List<EmaStabilityRow>();
        var trajectories = new List<EmaTrajectory>();
        foreach (var eta in c.Etas)
            foreach (var x in c.Ratios ?? EmaStabilityConfig.DefaultRatios(eta))
            {
                double ab = x * eta; // αβλ_max
                double beta = ab / (c.Alpha * p.LambdaMax);
                var tr = EmaDynamics.Simulate(p, c.Alpha, beta, eta, c.MaxSteps);
                trajectories.Add(tr);
                rows.Add(Row(p, tr, x, c.LemmaWindow));
            }
        return new EmaStabilityResult(c, p, rows, trajectories, RunSchedule(c, p));
    }

    /// <summary>Ratios of m to the schedule's instability boundary the check places runs at: either side, close to it.</summary>
    public static readonly IReadOnlyList<double> ScheduleRatios = [0.5, 0.9, 0.98, 1.02, 1.1];

    /// <summary>
    /// The trainer's schedule (<see cref="EmaDynamics.SimulateSchedule"/>) on the same problem at m = ratio·(1 + η^(−1/S)): stable
    /// when the lag's change per anchor update has shrunk over 400 cycles (growth = its geometric mean factor per cycle).
    /// </summary>
    public static IReadOnlyList<EmaScheduleRow> RunSchedule(EmaStabilityConfig c, EmaProblem p)
    {
        var rows = new List<EmaScheduleRow>();
        foreach (var eta in c.Etas.Where(e => e > 0 && e < 1))
            foreach (int s in c.ScheduleSteps)
            {
                double edge = TrainerSchedule.UnstableBoundary(eta, s);
                foreach (var x in ScheduleRatios)
                {
                    double m = x * edge;
                    var norms = EmaDynamics.SimulateSchedule(p, c.Alpha, m / (c.Alpha * p.LambdaMax), eta, s, 400);
                    int last = norms.Count - 1;
                    double growth = Math.Pow(norms[last] / norms[0], 1.0 / Math.Max(1, last));
                    bool simulatedStable = norms[last] < norms[0];
                    rows.Add(new EmaScheduleRow(eta, s, edge, x, m, growth, TrainerSchedule.Predict(m, eta, s) != StabilityRegime.Unstable, simulatedStable));
                }
            }
        return rows;
    }

    public const string ScheduleCsvFile = "ema-schedule.csv";

    public static string WriteScheduleCsv(EmaStabilityResult r, string dir)
    {
        Directory.CreateDirectory(dir);
        static string F(double x) => x.ToString("R", CultureInfo.InvariantCulture);
        var sb = new StringBuilder("eta,steps_per_anchor_update,unstable_boundary,ratio,alpha_beta_lambda_max,growth_per_cycle,predicted,simulated,agree\n");
        foreach (var x in r.Schedule)
            sb.Append(string.Join(",", F(x.Eta), x.Steps.ToString(CultureInfo.InvariantCulture), F(x.Boundary), F(x.Ratio), F(x.AlphaBetaLambdaMax), F(x.GrowthPerCycle),
                x.PredictedStable ? "stable" : "unstable", x.SimulatedStable ? "stable" : "unstable", x.Agrees ? "yes" : "no")).Append('\n');
        var path = Path.Combine(dir, ScheduleCsvFile);
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    public static EmaStabilityRow Row(EmaProblem p, EmaTrajectory tr, double ratio, int lemmaWindow)
    {
        double a = tr.Alpha, b = tr.Beta, eta = tr.Eta;
        double ab = a * b * p.LambdaMax;
        var shape = TrajectoryClassifier.Classify(p, tr);
        var predicted = StabilityLemma.Predict(ab, eta);
        double nan = double.NaN;
        double lagNorm = nan, eq62Norm = nan, e62 = nan, e63 = nan, kl = nan, kl67 = nan, eKl = nan;
        var eq62 = EmaSteadyState.LagMatrix(p, a, b, eta);
        eq62Norm = EmaDynamics.Norm(eq62);
        kl67 = EmaSteadyState.Kl(p, a, b, eta);
        if (shape.Regime != StabilityRegime.Unstable)
        {
            var lag = tr.Lag[^1];
            lagNorm = EmaDynamics.Norm(lag);
            e62 = EmaDynamics.Distance(lag, eq62) / eq62Norm;
            var modes = EmaSteadyState.LagModes(p, a, b, eta);
            e63 = EmaDynamics.Distance(p.Project(lag), modes) / EmaDynamics.Norm(modes);
            kl = EmaSteadyState.QuadraticKl(p, lag);
            eKl = Math.Abs(kl - kl67) / kl67;
        }
        // Lemma 4.1 over the first k steps (valid in every regime: finite sums).
        int k = Math.Min(lemmaWindow, tr.Steps);
        var (thK, lagK) = EmaSteadyState.LemmaK(p, a, b, eta, k);
        var simTh = p.Project(tr.Theta[k]);
        var simLag = p.Project(tr.Lag[k]);
        double e41 = Math.Max(EmaDynamics.Distance(simTh, thK) / EmaDynamics.Norm(thK), EmaDynamics.Distance(simLag, lagK) / EmaDynamics.Norm(lagK));
        double chiMin = p.Lambdas.Min(l => EmaSteadyState.Chi(l, a, b, eta));
        return new EmaStabilityRow(eta, ratio, ab, a, b, chiMin, predicted, shape.Regime, shape.Evidence, tr.Steps, shape.DecayRate,
            lagNorm, eq62Norm, e62, e63, kl, kl67, eKl, e41);
    }

    public static string WriteCsv(EmaStabilityResult r, string dir)
    {
        Directory.CreateDirectory(dir);
        static string F(double x) => double.IsNaN(x) ? "" : x.ToString("R", CultureInfo.InvariantCulture);
        var sb = new StringBuilder().Append(CsvHeader).Append('\n');
        foreach (var x in r.Rows)
            sb.Append(string.Join(",", F(x.Eta), F(x.Ratio), F(x.AlphaBetaLambdaMax), F(x.Alpha), F(x.Beta), F(x.ChiMin),
                StabilityLemma.Label(x.Predicted), StabilityLemma.Label(x.Simulated), x.Agrees ? "yes" : "no", x.Steps.ToString(CultureInfo.InvariantCulture), F(x.DecayRate),
                F(x.LagNorm), F(x.LagEq62Norm), F(x.LagEq62RelError), F(x.LagEq63RelError), F(x.Kl), F(x.KlEq67), F(x.KlRelError), F(x.Lemma41RelError),
                "\"" + x.Evidence.Replace("\"", "'") + "\"")).Append('\n');
        var path = Path.Combine(dir, CsvFile);
        File.WriteAllText(path, sb.ToString());
        return path;
    }
}

using EmaPg.Stability;
using EmaPg.Studies;

namespace EmaPg.Tests;

public class EmaStabilityStudyTests
{
    [Fact]
    public void SimulatedRegimesAgreeWithLemma42OnTheDefaultSweep()
    {
        var r = EmaStabilityStudy.Run(new EmaStabilityConfig());
        foreach (var row in r.Rows)
            Assert.True(row.Agrees, $"η={row.Eta} x={row.Ratio}: lemma {row.Predicted}, simulation {row.Simulated} ({row.Evidence})");
        // All three regimes are visited, both boundaries included.
        foreach (var regime in Enum.GetValues<StabilityRegime>())
            Assert.Contains(r.Rows, x => x.Simulated == regime);
        Assert.Contains(r.Rows, x => x.Ratio == 1.0 && x.Simulated == StabilityRegime.Monotone);
        Assert.Contains(r.Rows, x => Math.Abs(x.AlphaBetaLambdaMax - (1 + x.Eta)) < 1e-12 && x.Simulated == StabilityRegime.Unstable);
    }

    /// <summary>
    /// The trainer's schedule (S steps, then the EMA update): the simulated lag is stable just below 1 + η^(−1/S) and
    /// unstable just above it, for S = 1, 3, 10 and η = 0.9, 0.99 — and §4's boundary 1 + η would be wrong here.
    /// </summary>
    [Fact]
    public void TheTrainersScheduleIsUnstableFromOnePlusEtaToTheMinusOneOverS()
    {
        var r = EmaStabilityStudy.Run(new EmaStabilityConfig());
        Assert.Equal(2 * 3 * EmaStabilityStudy.ScheduleRatios.Count, r.Schedule.Count);
        foreach (var row in r.Schedule)
            Assert.True(row.Agrees, $"η={row.Eta} S={row.Steps} m/boundary={row.Ratio}: growth per cycle {row.GrowthPerCycle}");
        Assert.Contains(r.Schedule, x => x.Ratio == 1.02 && !x.SimulatedStable);
        Assert.Contains(r.Schedule, x => x.Ratio == 0.98 && x.SimulatedStable);
        Assert.Equal(1 + 1 / 0.9, TrainerSchedule.UnstableBoundary(0.9, 1), 12);
        Assert.Equal(1 + Math.Pow(0.9, -0.1), TrainerSchedule.UnstableBoundary(0.9, 10), 12);
        Assert.Equal(2.0, TrainerSchedule.UnstableBoundary(1.0, 7), 12);
        Assert.Equal(double.PositiveInfinity, TrainerSchedule.UnstableBoundary(0.0, 7));
        // At S = 1, m = 1.95 is past §4's boundary 1 + η = 1.9 yet stable under the schedule (boundary 2.11).
        Assert.Equal(StabilityRegime.Unstable, StabilityLemma.Predict(1.95, 0.9));
        Assert.Equal(StabilityRegime.Oscillatory, TrainerSchedule.Predict(1.95, 0.9, 1));
        Assert.Equal(StabilityRegime.Monotone, TrainerSchedule.Predict(0.99, 0.9, 10));
    }

    [Fact]
    public void SimulatedRegimesAgreeOnARandomFisher()
    {
        var r = EmaStabilityStudy.Run(new EmaStabilityConfig { Dim = 8, Seed = 4, Etas = [0.5, 0.95] });
        Assert.Equal(0, r.Disagreements);
    }

    [Fact]
    public void SteadyStateLagAndKlMatchEq62Eq63Eq67AndLemma41()
    {
        var r = EmaStabilityStudy.Run(new EmaStabilityConfig { Dim = 6, Seed = 2 });
        foreach (var row in r.Rows)
        {
            Assert.True(row.Lemma41RelError < 1e-10, $"Lemma 4.1 at x={row.Ratio}: {row.Lemma41RelError}");
            if (row.Simulated == StabilityRegime.Unstable) continue;
            Assert.True(row.LagEq62RelError < 1e-9, $"eq. 62 at x={row.Ratio}: {row.LagEq62RelError}");
            Assert.True(row.LagEq63RelError < 1e-9, $"eq. 63 at x={row.Ratio}: {row.LagEq63RelError}");
            Assert.True(row.KlRelError < 1e-9, $"eq. 67 at x={row.Ratio}: {row.KlRelError}");
        }
    }

    [Fact]
    public void SteadyStateLagPerModeIsEq63()
    {
        // Diagonal F: the eigenbasis is the standard basis, so eq. 63 reads off coordinate by coordinate.
        var p = EmaProblem.Diagonal([2.0, 1.0, 0.25], seed: 1);
        double alpha = 0.1, beta = 3, eta = 0.9; // αβλ_max = 0.6 < η
        var tr = EmaDynamics.Simulate(p, alpha, beta, eta);
        Assert.True(tr.Converged);
        for (int i = 0; i < 3; i++)
        {
            double want = alpha * p.Gradient[i] / ((1 - eta) + alpha * beta * p.Fisher[i, i]);
            Assert.Equal(want, tr.Lag[^1][i], 12);
        }
    }

    [Fact]
    public void LemmaPredictionHasTheThreeRegimes()
    {
        Assert.Equal(StabilityRegime.Monotone, StabilityLemma.Predict(0.9, 0.9));
        Assert.Equal(StabilityRegime.Oscillatory, StabilityLemma.Predict(0.91, 0.9));
        Assert.Equal(StabilityRegime.Oscillatory, StabilityLemma.Predict(1.89, 0.9));
        Assert.Equal(StabilityRegime.Unstable, StabilityLemma.Predict(1.9, 0.9));
        Assert.Equal(StabilityRegime.Unstable, StabilityLemma.Predict(1.9 - 1e-15, 0.9));
    }

    [Fact]
    public void ADisagreementIsReportedInTheCsv()
    {
        // Too few steps to see the slow η = 0.999 mode converge is still "decaying" (not a false alarm), and the
        // CSV carries the agree column either way.
        var r = EmaStabilityStudy.Run(new EmaStabilityConfig { Etas = [0.9], Ratios = [0.5, 1.5, 2.5] });
        var dir = Path.Combine(Path.GetTempPath(), "emapg-ema-" + Guid.NewGuid().ToString("N"));
        try
        {
            var path = EmaStabilityStudy.WriteCsv(r, dir);
            var lines = File.ReadAllLines(path);
            Assert.Equal(EmaStabilityStudy.CsvHeader, lines[0]);
            Assert.Equal(4, lines.Length);
            Assert.All(lines.Skip(1), l => Assert.Contains(",yes,", l));
            var fake = r with { Rows = [r.Rows[0] with { Simulated = StabilityRegime.Oscillatory }] };
            Assert.Equal(1, fake.Disagreements);
            Assert.Contains(",no,", File.ReadAllLines(EmaStabilityStudy.WriteCsv(fake, dir))[1]);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void CliRunsAndWritesCsvAndPlot()
    {
        var dir = Path.Combine(Path.GetTempPath(), "emapg-ema-" + Guid.NewGuid().ToString("N"));
        try
        {
            Assert.Equal(0, EmaPg.Cli.Program.Main(["study", "ema-stability", "--eta", "0.9", "--out", dir]));
            Assert.True(File.Exists(Path.Combine(dir, "ema-stability.csv")));
            Assert.True(new FileInfo(Path.Combine(dir, "ema-stability.png")).Length > 1000);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}

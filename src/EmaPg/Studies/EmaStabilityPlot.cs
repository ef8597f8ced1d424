using EmaPg.Stability;
using ScottPlot;

namespace EmaPg.Studies;

/// <summary>
/// Lag trajectories per simulated regime: one panel each (monotone / oscillatory / unstable), showing the
/// top-curvature component δ_t^{(0)} of the lag, in units of its first step αg^{(0)}, for every run of the
/// first η in that regime.
/// </summary>
public static class EmaStabilityPlot
{
    public const string FileName = "ema-stability.png";

    public static string Save(EmaStabilityResult r, string dir, int steps = 40, int panelWidth = 480, int height = 420)
    {
        Directory.CreateDirectory(dir);
        double eta = r.Config.Etas[0];
        var regimes = new[] { StabilityRegime.Monotone, StabilityRegime.Oscillatory, StabilityRegime.Unstable };
        var mp = new Multiplot();
        mp.AddPlots(regimes.Length);
        mp.Layout = new ScottPlot.MultiplotLayouts.Columns();
        var palette = new ScottPlot.Palettes.Category10();
        double g0 = r.Problem.Project(r.Problem.Gradient)[0];
        for (int pi = 0; pi < regimes.Length; pi++)
        {
            var plot = mp.GetPlot(pi);
            int ci = 0;
            for (int i = 0; i < r.Rows.Count; i++)
            {
                var row = r.Rows[i];
                if (row.Eta != eta || row.Simulated != regimes[pi]) continue;
                var tr = r.Trajectories[i];
                int n = Math.Min(steps, tr.Lag.Count - 1);
                var xs = Enumerable.Range(0, n + 1).Select(t => (double)t).ToArray();
                var ys = xs.Select(t => r.Problem.Project(tr.Lag[(int)t])[0] / (row.Alpha * g0)).ToArray();
                var s = plot.Add.Scatter(xs, ys, palette.GetColor(ci++));
                s.MarkerSize = 3;
                s.LegendText = $"αβλmax/η = {row.Ratio:0.###}";
            }
            plot.Title($"simulated: {StabilityLemma.Describe(regimes[pi])} (η = {eta})");
            plot.XLabel("step t");
            plot.YLabel("top-mode lag δ⁽⁰⁾ₜ / (α g⁽⁰⁾)");
            plot.Legend.IsVisible = ci > 0;
            plot.Legend.FontSize = 9;
            if (regimes[pi] == StabilityRegime.Unstable) plot.Axes.SetLimitsY(-60, 60);
        }
        var path = Path.Combine(dir, FileName);
        mp.SavePng(path, panelWidth * regimes.Length, height);
        return path;
    }
}

using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using EmaPg.Common;
using ScottPlot;

namespace EmaPg.Training;

/// <summary>Mean and spread of a metric across seeds, per preset: the paper's headline comparison at small scale.</summary>
public static class Comparison
{
    /// <summary>
    /// One line of a comparison, written PRESET[+key=value…] in `compare --presets`: the preset with its own config overrides
    /// (e.g. gspo+ema_eta=1, the preset with a fixed reference instead of its EMA anchor). Label names its run directories
    /// ({Label}-s{seed}), its curve and its row.
    /// </summary>
    public sealed record Entry(string Label, string Preset, IReadOnlyList<(string Key, string Value)> Overrides)
    {
        /// <summary>
        /// The config of seed <paramref name="seed"/>: the preset, then compare's common overrides (iterations, --set), then
        /// the entry's own; keys and values are checked here, so a bad entry is refused before anything trains.
        /// </summary>
        public TrainConfig Resolve(int seed, IEnumerable<(string Key, string Value)> common) =>
            ConfigFile.Resolve(Preset, null, [("seed", seed.ToString(CultureInfo.InvariantCulture)), .. common, .. Overrides]);
    }

    private static readonly Regex SafeValue = new("^[A-Za-z0-9._-]+$", RegexOptions.CultureInvariant);

    /// <summary>Parses PRESET[+key=value…]; values are limited to [A-Za-z0-9._-] because the label becomes a directory name.</summary>
    public static Entry ParseEntry(string text)
    {
        var parts = text.Trim().Split('+');
        var preset = Check.OneOf("--presets", parts[0].Trim(), ConfigSchema.Presets);
        var overrides = new List<(string, string)>();
        foreach (var part in parts.Skip(1))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0 || eq == part.Length - 1)
                throw new UserError($"--presets entry '{text}': '{part}' must be key=value (PRESET+key=value+…; write 1e+3 as 1000).");
            var key = part[..eq].Trim().Replace('-', '_');
            var value = part[(eq + 1)..].Trim();
            if (key is "seed" or "preset")
                throw new UserError($"--presets entry '{text}': {key} is not allowed; compare chooses the {key} of each run (use --seeds / the preset name).");
            if (!SafeValue.IsMatch(value))
                throw new UserError($"--presets entry '{text}': the value '{value}' of {key} may hold only letters, digits, '.', '_' and '-' (it names the run directory); use --set for others.");
            overrides.Add((key, value));
        }
        return new Entry(string.Join("+", new[] { preset }.Concat(overrides.Select(o => $"{o.Item1}={o.Item2}"))), preset, overrides);
    }

    public sealed record Curve(string Preset, double[] Iteration, double[] WallSeconds, double[] Mean, double[] Min, double[] Max, int Seeds);

    /// <summary>Reads runDirs' metrics.jsonl and aggregates <paramref name="key"/> over the iterations every seed evaluated.</summary>
    public static Curve Aggregate(string preset, IReadOnlyList<string> runDirs, string key = "test_pass1")
    {
        var perSeed = runDirs.Select(d => MetricsLog.Read(d)).ToList();
        var its = perSeed.Select(rows => rows.Where(r => r.ContainsKey(key)).Select(r => r["iteration"]).ToHashSet())
            .Aggregate((a, b) => { a.IntersectWith(b); return a; }).OrderBy(x => x).ToArray();
        double[] Values(List<IReadOnlyDictionary<string, double>> rows) => its.Select(i => rows.First(r => r["iteration"] == i)[key]).ToArray();
        double[] Wall(List<IReadOnlyDictionary<string, double>> rows) => its.Select(i => rows.Where(r => r["iteration"] <= i).Sum(r => r.GetValueOrDefault("iteration_seconds"))).ToArray();
        var vals = perSeed.Select(Values).ToList();
        var walls = perSeed.Select(Wall).ToList();
        int n = its.Length;
        return new Curve(preset, its,
            Enumerable.Range(0, n).Select(j => walls.Average(w => w[j])).ToArray(),
            Enumerable.Range(0, n).Select(j => vals.Average(v => v[j])).ToArray(),
            Enumerable.Range(0, n).Select(j => vals.Min(v => v[j])).ToArray(),
            Enumerable.Range(0, n).Select(j => vals.Max(v => v[j])).ToArray(), runDirs.Count);
    }

    public static void WriteCsv(IEnumerable<Curve> curves, string path)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder("preset,iteration,wall_seconds,mean,min,max,seeds\n");
        foreach (var c in curves)
            for (int j = 0; j < c.Iteration.Length; j++)
                sb.Append(string.Join(",", c.Preset, c.Iteration[j].ToString(inv), c.WallSeconds[j].ToString("F1", inv), c.Mean[j].ToString("F4", inv),
                    c.Min[j].ToString("F4", inv), c.Max[j].ToString("F4", inv), c.Seeds.ToString(inv))).Append('\n');
        File.WriteAllText(path, sb.ToString());
    }

    /// <summary>Two panels, test pass@1 against iterations and against wall-clock; line = mean, band = min–max over seeds.</summary>
    public static void Plot(IReadOnlyList<Curve> curves, string path, double basePass1)
    {
        var multi = new Multiplot();
        multi.AddPlots(2);
        var palette = new ScottPlot.Palettes.Category10();
        for (int panel = 0; panel < 2; panel++)
        {
            var plot = multi.GetPlot(panel);
            for (int i = 0; i < curves.Count; i++)
            {
                var c = curves[i];
                var x = panel == 0 ? c.Iteration : c.WallSeconds;
                var color = palette.GetColor(i);
                var band = plot.Add.FillY(x, c.Min, c.Max);
                band.FillColor = color.WithAlpha(0.2);
                band.LineWidth = 0;
                var line = plot.Add.Scatter(x, c.Mean);
                line.Color = color;
                line.LineWidth = 2;
                line.LegendText = panel == 0 ? $"{c.Preset} (n={c.Seeds})" : "";
            }
            if (double.IsFinite(basePass1))
            {
                var h = plot.Add.HorizontalLine(basePass1);
                h.LinePattern = LinePattern.Dashed;
                h.Color = Colors.Gray;
                h.LegendText = panel == 0 ? "base policy (mean over seeds)" : "";
            }
            plot.XLabel(panel == 0 ? "iteration" : "wall-clock seconds of RL");
            plot.YLabel("test pass@1");
            plot.Title(panel == 0 ? "test accuracy vs iterations (mean, min–max over seeds)" : "test accuracy vs wall-clock");
            if (panel == 0) plot.ShowLegend(Alignment.LowerRight);
        }
        multi.Layout = new ScottPlot.MultiplotLayouts.Columns();
        multi.SavePng(path, 1400, 550);
    }
}

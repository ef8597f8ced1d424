using ScottPlot;

namespace EmaPg.Studies;

/// <summary>
/// Fig. 4-style plot of the Top-k variance study: one panel per target mass, log–log axes (relative RMSE
/// against B), one curve per estimator and k. Sampled KL is one black curve; each k has one colour, with
/// Top-k solid, Algorithm 1 as written dotted and Truncated dashed.
/// </summary>
public static class TopkVariancePlot
{
    public const string FileName = "topk-variance.png";

    public static string Save(TopkVarianceResult r, string dir, int panelWidth = 520, int height = 480)
    {
        Directory.CreateDirectory(dir);
        var masses = r.Config.Masses;
        var mp = new Multiplot();
        mp.AddPlots(masses.Count);
        mp.Layout = new ScottPlot.MultiplotLayouts.Columns();
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < masses.Count; i++)
        {
            var plot = mp.GetPlot(i);
            double m = masses[i];
            var cells = r.Cells.Where(c => c.Mass == m).ToList();
            void Curve(IEnumerable<VarianceCell> pts, Color color, LinePattern pattern, string? label, float width = 1.5f)
            {
                var ordered = pts.Where(c => c.RelRmse > 0).OrderBy(c => c.Batch).ToList();
                if (ordered.Count == 0) return;
                var s = plot.Add.Scatter(ordered.Select(c => Math.Log10(c.Batch)).ToArray(), ordered.Select(c => Math.Log10(c.RelRmse)).ToArray(), color);
                s.LinePattern = pattern;
                s.LineWidth = width;
                s.MarkerSize = 3;
                if (label is not null) s.LegendText = label;
            }
            Curve(cells.Where(c => c.Estimator == "sampled"), Colors.Black, LinePattern.Solid, i == 0 ? "sampled (k=0)" : null, 2.5f);
            for (int j = 0; j < r.Config.Ks.Count; j++)
            {
                int k = r.Config.Ks[j];
                var col = palette.GetColor(j);
                Curve(cells.Where(c => c.Estimator == "topk" && c.K == k), col, LinePattern.Solid, i == 0 ? $"top-k k={k}" : null);
                Curve(cells.Where(c => c.Estimator == "topk-paper" && c.K == k), col, LinePattern.Dotted, null, 1f);
                Curve(cells.Where(c => c.Estimator == "truncated" && c.K == k), col, LinePattern.Dashed, null);
            }
            plot.Title($"M32(π) = {m}");
            plot.XLabel("B (sampled tokens)");
            plot.YLabel(i == 0 ? "relative RMSE of ∇ (eq. 108)" : "");
            LogAxis(plot.Axes.Bottom);
            LogAxis(plot.Axes.Left);
            if (i == 0)
            {
                foreach (var (text, pattern) in new[] { ("solid: top-k (corrected)", LinePattern.Solid), ("dotted: top-k, Alg. 1 as written", LinePattern.Dotted), ("dashed: truncated", LinePattern.Dashed) })
                    plot.Legend.ManualItems.Add(new LegendItem { LabelText = text, LineColor = Colors.Gray, LineWidth = 1.5f, LinePattern = pattern });
                plot.Legend.IsVisible = true;
                plot.Legend.Alignment = Alignment.LowerLeft;
                plot.Legend.FontSize = 9;
            }
        }
        var path = Path.Combine(dir, FileName);
        mp.SavePng(path, panelWidth * masses.Count, height);
        return path;
    }

    /// <summary>Axis over log10 values with decade ticks labelled as powers of ten.</summary>
    internal static void LogAxis(ScottPlot.IAxis axis)
    {
        axis.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = v => $"1e{v:0}",
        };
    }
}

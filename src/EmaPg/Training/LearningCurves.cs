using ScottPlot;

namespace EmaPg.Training;

/// <summary>PNG learning curves of a run (ScottPlot), redrawn from the metrics history; panels a run never logged stay empty.</summary>
public static class LearningCurves
{
    public static readonly (string Key, string Title)[] Panels =
    [
        ("reward_mean", "train reward (mean)"),
        ("test_pass1", "test pass@1"),
        ("kl", "KL estimate"),
        ("entropy", "policy entropy (nats/token)"),
        ("ema_lag", "‖θ − θ_ema‖"),
        ("clip_fraction", "clip fraction"),
        ("is_weight_max", "max IS weight s (before clip)"),
        ("stability_margin", "stability margin αβλ̂ (eq. 28)"),
    ];

    public static void Save(IReadOnlyList<IReadOnlyDictionary<string, double>> history, string path, string title)
    {
        var multi = new Multiplot();
        multi.AddPlots(Panels.Length);
        for (int i = 0; i < Panels.Length; i++)
        {
            var (key, name) = Panels[i];
            var plot = multi.GetPlot(i);
            var rows = history.Where(r => r.TryGetValue(key, out var v) && double.IsFinite(v)).ToList();
            if (rows.Count > 0)
            {
                var sc = plot.Add.Scatter(rows.Select(r => r["iteration"]).ToArray(), rows.Select(r => r[key]).ToArray());
                sc.MarkerSize = rows.Count < 30 ? 5 : 0;
            }
            plot.Title(i == 0 ? $"{title}: {name}" : name);
            plot.XLabel("iteration");
        }
        multi.Layout = new ScottPlot.MultiplotLayouts.Grid(rows: 2, columns: 4);
        multi.SavePng(path, 2000, 800);
    }
}

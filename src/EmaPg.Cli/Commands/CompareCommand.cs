using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EmaPg.Common;
using EmaPg.Training;
using Spectre.Console;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg compare`: several presets × seeds, then mean ± spread of test accuracy in one plot.</summary>
public static class CompareCommand
{
    public static Command Create()
    {
        var cmd = new Command("compare", "Train several presets over several seeds and plot test accuracy (mean, min–max) against iterations and wall-clock.");
        var presets = new Option<string>("--presets") { Description = $"Comma-separated presets, of: {string.Join(", ", ConfigSchema.Presets)}; PRESET+key=value[+key=value…] is the preset with its own overrides (e.g. gspo+ema_eta=1: a fixed reference instead of its EMA anchor), after --set", DefaultValueFactory = _ => string.Join(",", ConfigSchema.PaperPresets) };
        var seeds = new Option<int>("--seeds") { Description = "Seeds per preset, 1..100 (seeds 0..n−1)", DefaultValueFactory = _ => 3 };
        var output = new Option<string>("--out") { Description = "Directory for the runs, compare.csv and compare.png", DefaultValueFactory = _ => "runs/compare" };
        var iterations = new Option<int?>("--iterations") { Description = "Override iterations for every run" };
        cmd.Options.Add(presets);
        cmd.Options.Add(seeds);
        cmd.Options.Add(output);
        cmd.Options.Add(iterations);
        var set = new Option<string[]>("--set")
        {
            Description = "Config override for every run, key=value (any train config key except preset and seed), repeatable: --set kl_beta=0.01 --set lr=1e-4",
            AllowMultipleArgumentsPerToken = false,
        };
        cmd.Options.Add(set);
        cmd.SetAction(pr =>
        {
            var list = pr.GetValue(presets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Comparison.ParseEntry).ToList();
            if (list.Count == 0) throw new UserError($"--presets must name at least one of {string.Join(", ", ConfigSchema.Presets)}.");
            if (list.DistinctBy(e => e.Label).Count() != list.Count) throw new UserError("--presets names a preset twice.");
            int n = Check.Range("--seeds", pr.GetValue(seeds), 1, 100);
            var outDir = Check.DirectoryPath(pr.GetValue(output), "--out");
            var it = pr.GetValue(iterations);
            if (it is not null) Check.Range("--iterations", it.Value, 1, 1_000_000);
            var common = new List<(string, string)>();
            if (it is not null) common.Add(("iterations", it.Value.ToString(CultureInfo.InvariantCulture)));
            common.AddRange((pr.GetValue(set) ?? []).Select(ParseSet));
            // Every config and run directory is checked before the first run starts, so a refusal never comes after hours of training.
            var runs = list.Select(e => (e.Label, Seeds: Enumerable.Range(0, n).Select(s => (Config: e.Resolve(s, common), Dir: Path.Combine(outDir, $"{e.Label}-s{s}"))).ToList())).ToList();
            foreach (var (_, dir) in runs.SelectMany(r => r.Seeds))
                if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any() && !RunDirectory.IsRun(dir))
                    throw new UserError($"'{dir}' is not empty and is not an EmaPg run directory; refusing to write into it. Use another --out.");
            var curves = new List<Comparison.Curve>();
            var bases = new List<double>();
            var rows = new List<(string Preset, double Mean, double Min, double Max, double Wall)>();
            foreach (var (label, seedRuns) in runs)
            {
                foreach (var (c, dir) in seedRuns)
                {
                    // Reusing or resuming a run made with other settings would silently mix experiments.
                    bool isRun = RunDirectory.IsRun(dir);
                    if (isRun && ConfigFile.Format(TrainRun.LoadRunConfig(dir)) != ConfigFile.Format(c))
                        throw new UserError($"'{dir}' holds a run with a different config than this comparison asks for (see its 'config' file); use another --out.");
                    var summaryPath = Path.Combine(dir, TrainRun.SummaryName);
                    if (File.Exists(summaryPath)) { AnsiConsole.MarkupLine($"[grey]{Markup.Escape(dir)}: done, reusing[/]"); continue; }
                    // Same settings: continue from the checkpoint, or start over a run that never reached one.
                    var mode = !isRun ? TrainRun.StartMode.New : Directory.EnumerateFiles(dir, "checkpoint*.bin").Any() ? TrainRun.StartMode.Resume : TrainRun.StartMode.Restart;
                    TrainCommand.Run(c, dir, mode);
                }
                var dirs = seedRuns.Select(r => r.Dir).ToList();
                var summaries = dirs.Select(d => JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(File.ReadAllText(Path.Combine(d, TrainRun.SummaryName)))!).ToList();
                // Each seed has its own cold start, hence its own base policy; the plot's reference line is their mean.
                bases.AddRange(summaries.Select(s => s["base_pass1"].GetDouble()));
                var finals = summaries.Select(s => s["final_pass1"].GetDouble()).ToList();
                rows.Add((label, finals.Average(), finals.Min(), finals.Max(), summaries.Average(s => s["wall_seconds"].GetDouble())));
                curves.Add(Comparison.Aggregate(label, dirs));
            }
            double basePass1 = bases.Average();
            Directory.CreateDirectory(outDir);
            Comparison.WriteCsv(curves, Path.Combine(outDir, "compare.csv"));
            Comparison.Plot(curves, Path.Combine(outDir, "compare.png"), basePass1);
            var t = new Table().Border(TableBorder.Rounded).Title($"final test pass@1 over {n} seed(s); base policies {basePass1:P1} on average")
                .AddColumns("preset", "mean", "min", "max", "mean RL seconds");
            foreach (var r in rows) t.AddRow(r.Preset, r.Mean.ToString("P1", CultureInfo.InvariantCulture), r.Min.ToString("P1", CultureInfo.InvariantCulture), r.Max.ToString("P1", CultureInfo.InvariantCulture), r.Wall.ToString("F0", CultureInfo.InvariantCulture));
            AnsiConsole.Write(t);
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape(outDir)}/compare.png, compare.csv[/]");
            return 0;
        });
        return cmd;
    }

    private static (string Key, string Value) ParseSet(string kv)
    {
        int eq = kv.IndexOf('=');
        if (eq <= 0) throw new UserError($"--set must be key=value, got '{kv}'.");
        var key = kv[..eq].Trim().Replace('-', '_');
        if (key is "seed" or "preset")
            throw new UserError($"--set {key}=… is not allowed: compare chooses the {key} of each run (use --seeds / --presets).");
        return (key, kv[(eq + 1)..].Trim());
    }
}

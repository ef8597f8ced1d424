using System.CommandLine;
using System.Globalization;
using EmaPg.Common;
using EmaPg.Studies;
using Spectre.Console;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg study topk-variance`: relative RMSE of reverse-KL gradient estimators vs B (App. G, Fig. 4).</summary>
public static class StudyTopkVarianceCommand
{
    public static Command Create()
    {
        var cmd = new Command("topk-variance", "Bias–variance of Top-k KL (App. G, Fig. 4): relative RMSE of the per-token reverse-KL gradient of sampled (K4), truncated, Top-k (Alg. 1 as written) and Top-k (corrected) against the exact gradient, over top-32 mass m, k and B sampled tokens.");
        var vocab = new Option<int>("--vocab") { Description = "Vocabulary size |V|, 64..1000000", DefaultValueFactory = _ => 32000 };
        var mass = new Option<string>("--mass") { Description = "Target top-32 masses M32(π), each in (32/|V|, 1)", DefaultValueFactory = _ => "0.2,0.5,0.8,0.9" };
        var k = new Option<string>("--k") { Description = "Top-k sizes, each in [1, |V|-1]", DefaultValueFactory = _ => "4,8,16,32,64,128,256" };
        var batch = new Option<string>("--batch") { Description = "Numbers B of sampled tokens, each in [1, 1048576]", DefaultValueFactory = _ => string.Join(",", Enumerable.Range(0, 16).Select(i => 1 << i)) };
        var tasks = new Option<int>("--tasks") { Description = "Independent synthetic tasks per mass, 1..1000", DefaultValueFactory = _ => 8 };
        var seed = new Option<int>("--seed") { Description = "Random seed, ≥ 0", DefaultValueFactory = _ => 0 };
        var mcErr = new Option<double>("--mc-rel-error") { Description = "Target relative standard error of each reported (task-averaged) rel_rmse, in (0, 1]; each task runs to this × √tasks", DefaultValueFactory = _ => 0.05 };
        var maxReps = new Option<int>("--max-reps") { Description = "Cap on Monte-Carlo repetitions per cell, 2..1000000", DefaultValueFactory = _ => 4096 };
        var outDir = new Option<string>("--out") { Description = "Output directory", DefaultValueFactory = _ => "out/topk-variance" };
        var quick = new Option<bool>("--quick") { Description = "Tiny grid for tests (|V| = 1000, m ∈ {0.5, 0.9}, k ∈ {4, 32}, B ∈ {1, 16, 256}, 2 tasks); overrides the grid options" };
        var noPlot = new Option<bool>("--no-plot") { Description = "Skip the PNG plot" };
        foreach (var o in new Option[] { vocab, mass, k, batch, tasks, seed, mcErr, maxReps, outDir, quick, noPlot }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            TopkVarianceConfig config;
            if (pr.GetValue(quick))
                config = TopkVarianceConfig.Quick with { Seed = Check.Range("--seed", pr.GetValue(seed), 0, int.MaxValue) };
            else
            {
                int v = Check.Range("--vocab", pr.GetValue(vocab), 64, 1_000_000);
                double floor = (double)SyntheticTask.MassTopK / v;
                config = new TopkVarianceConfig
                {
                    Vocab = v,
                    Masses = ListParse.Doubles("--mass", pr.GetValue(mass)!, floor, 1, minInclusive: false, maxInclusive: false),
                    Ks = ListParse.Ints("--k", pr.GetValue(k)!, 1, v - 1),
                    Batches = ListParse.Ints("--batch", pr.GetValue(batch)!, 1, 1 << 20),
                    Tasks = Check.Range("--tasks", pr.GetValue(tasks), 1, 1000),
                    Seed = Check.Range("--seed", pr.GetValue(seed), 0, int.MaxValue),
                    McRelativeError = Check.Range("--mc-rel-error", pr.GetValue(mcErr), 0, 1, minInclusive: false),
                    MaxReps = Check.Range("--max-reps", pr.GetValue(maxReps), 2, 1_000_000),
                };
            }
            string dir = Check.DirectoryPath(pr.GetValue(outDir), "--out");
            var c = config;
            AnsiConsole.MarkupLine($"[bold]Top-k variance study[/] |V| = {c.Vocab}, m ∈ {{{string.Join(", ", c.Masses)}}}, k ∈ {{{string.Join(", ", c.Ks)}}}, B ∈ {{{c.Batches.Min()}…{c.Batches.Max()}}} ({c.Batches.Count} values), {c.Tasks} tasks, seed {c.Seed}");
            AnsiConsole.MarkupLine($"[grey]Monte Carlo: repetitions per (task, cell) double from {c.MinReps} until the task's RMSE has relative standard error ≤ {c.TaskRelativeError:0.###} = {c.McRelativeError} × √{c.Tasks}, so each task-averaged rel_rmse has ≤ {c.McRelativeError} (cap {c.MaxReps}).[/]");
            TopkVarianceResult? result = null;
            if (Console.IsOutputRedirected)
            {
                // No live bar when redirected: a line per 5% instead.
                long lastPct = -1;
                result = TopkVarianceStudy.Run(c, new SyncProgress<StudyProgress>(p =>
                {
                    long pct = p.Total == 0 ? 100 : 100 * p.Done / p.Total / 5 * 5;
                    if (pct == lastPct) return;
                    lastPct = pct;
                    Console.WriteLine($"[{pct,3}%] {p.Description}");
                }));
            }
            else
                AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var bar = ctx.AddTask("topk-variance", maxValue: 1);
                        result = TopkVarianceStudy.Run(c, new SyncProgress<StudyProgress>(p =>
                        {
                            bar.MaxValue = p.Total;
                            bar.Value = p.Done;
                            bar.Description = Markup.Escape(p.Description);
                        }));
                        bar.Value = bar.MaxValue;
                    });
            var r = result!;
            var files = TopkVarianceOutput.Write(r, dir).ToList();
            if (!pr.GetValue(noPlot)) files.Add(TopkVariancePlot.Save(r, dir));
            Report(r);
            foreach (var f in files) AnsiConsole.MarkupLine($"[grey]wrote {Markup.Escape(f)}[/]");
            return 0;
        });
        return cmd;
    }

    private static void Report(TopkVarianceResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        var t = new Table().Border(TableBorder.Rounded).Title("Critical sample size: smallest B from which top-k beats truncated (— : never on this grid)");
        t.AddColumn("k");
        foreach (var m in r.Config.Masses) t.AddColumn($"m = {m.ToString(inv)}");
        foreach (var k in r.Config.Ks)
            t.AddRow([k.ToString(inv), .. r.Config.Masses.Select(m => r.Critical.FirstOrDefault(c => c.Mass == m && c.K == k)?.Batch?.ToString(inv) ?? "—")]);
        AnsiConsole.Write(t);
        var reps = r.TaskCells.Select(x => x.Reps).OrderBy(x => x).ToList();
        int capped = r.TaskCells.Count(x => x.Reps >= r.Config.MaxReps && x.RelStandardError > r.Config.McRelativeError);
        AnsiConsole.MarkupLine($"Monte Carlo: {r.TotalReps:N0} repetitions over {r.TaskCells.Count:N0} (task, cell) pairs; per pair min {reps.First()}, median {reps[reps.Count / 2]}, max {reps.Last()}; " +
            $"{capped} pair(s) stopped at the cap above the target. Worst relative standard error of a task-averaged rel_rmse: {r.WorstRelStandardError:P1}.");
        AnsiConsole.MarkupLine($"[bold]Elapsed: {r.Elapsed.TotalSeconds:F1} s[/]");
    }
}

/// <summary>IProgress that reports synchronously on the worker thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

using System.CommandLine;
using System.Globalization;
using EmaPg.Common;
using EmaPg.Training;
using Spectre.Console;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg train`: Algorithm 3 on the embedded task; every config key is an option.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var cmd = new Command("train", "Train a policy with EMA-PG (Algorithm 3): on the embedded arithmetic task (default), the embedded word problems (--preset word-problems), or your model and data (--model DIR --data FILE --eval-data FILE --reward math). Every config key is an option; see `configs/` for presets.");
        var config = new Option<string?>("--config") { Description = "A config file (key = value lines) applied after the preset" };
        var output = new Option<string?>("--out") { Description = "Run directory (default runs/<preset>-s<seed>)" };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in this directory from its last checkpoint" };
        var restart = new Option<bool>("--restart") { Description = "With --out: start over a run directory whose run never reached a checkpoint (its metrics are discarded)" };
        cmd.Options.Add(config);
        cmd.Options.Add(output);
        cmd.Options.Add(resume);
        cmd.Options.Add(restart);
        var keyOptions = ConfigOptions.Add(cmd);

        cmd.SetAction(pr =>
        {
            var overrides = keyOptions.Given(pr);
            string? resumeDir = pr.GetValue(resume);
            TrainConfig c;
            string runDir;
            if (resumeDir is not null)
            {
                if (overrides.Count > 0 || pr.GetValue(config) is not null)
                    throw new UserError("--resume continues a run with its own config; it takes no other config options.");
                if (pr.GetValue(output) is not null) throw new UserError("--resume continues a run in its own directory; it takes no --out.");
                if (pr.GetValue(restart)) throw new UserError("--restart starts a run over; it cannot be combined with --resume.");
                RunDirectory.ValidatePath(resumeDir, "--resume");
                c = TrainRun.LoadRunConfig(resumeDir);
                runDir = resumeDir;
            }
            else
            {
                var preset = overrides.FirstOrDefault(o => o.Name == "preset").Item2;
                c = ConfigFile.Resolve(preset, pr.GetValue(config), overrides.Where(o => o.Name != "preset"));
                runDir = RunDirectory.ValidatePath(pr.GetValue(output) ?? Path.Combine("runs", $"{c.Preset}-s{c.Seed}"), "--out");
            }
            return Run(c, runDir, resumeDir is not null ? TrainRun.StartMode.Resume : pr.GetValue(restart) ? TrainRun.StartMode.Restart : TrainRun.StartMode.New);
        });
        return cmd;
    }

    internal static int Run(TrainConfig c, string runDir, TrainRun.StartMode mode)
    {
        var inv = CultureInfo.InvariantCulture;
        AnsiConsole.MarkupLine($"[bold]EmaPg train[/] preset [cyan]{c.Preset}[/], KL [cyan]{c.KlEstimator}[/] (k = {c.KlTopK}, β = {c.KlBeta.ToString(inv)}), η = {c.EmaEta.ToString(inv)}, T_ema = {c.EmaPeriod}, seed {c.Seed} → [grey]{runDir}[/]");
        TrainSummary? summary = null;
        var interactive = !Console.IsOutputRedirected;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var bar = ctx.AddTask("cold start / base eval", maxValue: c.Iterations);
                summary = TrainRun.Execute(c, runDir, mode,
                    onIteration: r =>
                    {
                        var m = r.Metrics;
                        string test = m.TryGetValue("test_pass1", out var p1) ? $" test@1 {p1:P1}" : "";
                        bar.Description = $"it {r.Iteration}/{r.Total} reward {m["reward_mean"]:F3} acc {m["train_accuracy"]:P0} KL {m["kl"]:E2}{test}";
                        bar.Value = r.Iteration;
                        if (!interactive) Console.WriteLine(bar.Description);
                    },
                    log: s => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(s)}[/]"));
            });
        var sm = summary!;
        var t = new Table().Border(TableBorder.Rounded).Title("summary").AddColumns("", "base", "final");
        t.AddRow("test pass@1", sm.BasePass1.ToString("P1", inv), sm.FinalPass1.ToString("P1", inv));
        if (sm.K > 1) t.AddRow($"test pass@{sm.K}", sm.BasePassK.ToString("P1", inv), sm.FinalPassK.ToString("P1", inv));
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine($"pass@1 {(sm.FinalPass1 - sm.BasePass1) * 100:+0.0;-0.0} points in {sm.Iterations} iterations, {sm.WallSeconds:F0} s of RL over all sessions of the run ({sm.TotalSeconds:F0} s in this process, cold start and evaluations included); sampling {sm.SampleTokensPerSecond:F0} tok/s, training {sm.TrainTokensPerSecond:F0} tok/s; skipped steps {sm.SkippedSteps}.");
        AnsiConsole.MarkupLine($"[grey]{Markup.Escape(runDir)}: config, metrics.jsonl, tensorboard/, learning-curves.png, checkpoint.bin, summary.json[/]");
        return 0;
    }
}

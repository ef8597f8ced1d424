using System.CommandLine;
using EmaPg.Common;
using EmaPg.Training;
using Spectre.Console;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg plot runs/&lt;name&gt;`: redraws a run's learning curves from metrics.jsonl (e.g. while it is still training).</summary>
public static class PlotCommand
{
    public static Command Create()
    {
        var cmd = new Command("plot", "Redraw a run's learning-curves.png from its metrics.jsonl (works on unfinished runs too).");
        var dir = new Argument<string>("run") { Description = "Run directory (e.g. runs/ema-pg-reverse-s0)" };
        var output = new Option<string?>("--out") { Description = "PNG path (default RUN/learning-curves.png)" };
        cmd.Arguments.Add(dir);
        cmd.Options.Add(output);
        cmd.SetAction(pr =>
        {
            var runDir = pr.GetValue(dir)!;
            var c = TrainRun.LoadRunConfig(runDir);
            if (!File.Exists(Path.Combine(runDir, "metrics.jsonl"))) throw new UserError($"'{runDir}' has no metrics.jsonl yet.");
            var history = MetricsLog.Read(runDir);
            var path = pr.GetValue(output) ?? Path.Combine(runDir, "learning-curves.png");
            LearningCurves.Save(history, path, $"{c.Preset} (seed {c.Seed})");
            AnsiConsole.MarkupLine($"{history.Count} iterations → [grey]{Markup.Escape(path)}[/]");
            return 0;
        });
        return cmd;
    }
}

using System.CommandLine;
using System.Globalization;
using EmaPg.Common;
using EmaPg.Eval;
using EmaPg.Model;
using EmaPg.Training;
using Spectre.Console;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg eval runs/&lt;name&gt;`: pass@1 and pass@k of a run's policy on the held-out test split.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var cmd = new Command("eval", "Evaluate a run's latest checkpoint on the test split: pass@1 and pass@k (unbiased estimator, k ≤ n samples).");
        var dir = new Argument<string>("run") { Description = "Run directory (e.g. runs/ema-pg-reverse-s0)" };
        var samples = new Option<int>("--samples") { Description = "Samples per problem n, 1..1024", DefaultValueFactory = _ => 8 };
        var ks = new Option<string>("--k") { Description = "Comma-separated k values, each in [1, n]", DefaultValueFactory = _ => "1,4,8" };
        var problems = new Option<int>("--problems") { Description = "Test problems (0 = the whole split)", DefaultValueFactory = _ => 0 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature in (0, 10]; 1 samples the policy itself, small values approach greedy decoding", DefaultValueFactory = _ => 1.0 };
        cmd.Arguments.Add(dir);
        cmd.Options.Add(temperature);
        cmd.Options.Add(samples);
        cmd.Options.Add(ks);
        cmd.Options.Add(problems);
        cmd.SetAction(pr =>
        {
            var runDir = pr.GetValue(dir)!;
            int n = Check.Range("--samples", pr.GetValue(samples), 1, 1024);
            var kList = pr.GetValue(ks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s =>
                int.TryParse(s, CultureInfo.InvariantCulture, out var k) ? Check.Range("--k", k, 1, n) : throw new UserError($"--k must be a comma-separated list of integers in [1, {n}], got '{s}'.")).Distinct().OrderBy(k => k).ToList();
            int maxProblems = Check.Range("--problems", pr.GetValue(problems), 0, 1_000_000);
            double temp = Check.Range("--temperature", pr.GetValue(temperature), 0.0, 10.0, minInclusive: false);
            var c = TrainRun.LoadRunConfig(runDir);
            var task = TrainRun.MakeTask(c);
            using var model = new DecoderLM(TrainRun.MakeModelConfig(c, task), TrainRun.MakeDevice(c));
            var into = model.named_parameters().ToDictionary(p => "policy/" + p.name, p => (TorchSharp.torch.Tensor)p.parameter);
            var state = RunDirectory.LoadLatestCheckpoint(runDir, p => TrainerCheckpoint.Load(p, into, requireAll: false),
                w => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(w)}[/]"));
            var res = Evaluator.Evaluate(model, task, new EvalOptions { SamplesPerProblem = n, Ks = kList, MaxProblems = maxProblems, Seed = 777, Temperature = temp });
            var t = new Table().Border(TableBorder.Rounded).Title($"{runDir} after iteration {state.Iteration}: {res.CorrectCounts.Count} test problems × {n} samples, T = {temp.ToString(CultureInfo.InvariantCulture)}").AddColumns("metric", "value");
            foreach (var k in kList) t.AddRow($"pass@{k}", res.PassAtK[k].ToString("P2", CultureInfo.InvariantCulture));
            t.AddRow("mean reward", res.MeanReward.ToString("F4", CultureInfo.InvariantCulture));
            t.AddRow("sampling tokens/s", res.TokensPerSecond.ToString("F0", CultureInfo.InvariantCulture));
            AnsiConsole.Write(t);
            return 0;
        });
        return cmd;
    }
}

using System.CommandLine;
using System.Globalization;
using EmaPg.Common;
using EmaPg.Eval;
using System.Text.Json;
using EmaPg.Training;
using Spectre.Console;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg eval [RUN] [--model DIR] [--data FILE]`: pass@1 and pass@k of a run's policy or a model folder, on its task or any dataset.</summary>
public static class EvalCommand
{
    /// <summary>The config keys that describe a dataset evaluation (same names as in `train`), and the search environment's
    /// retrieval (e.g. --max-turns 0: a search run's policy with searching disabled).</summary>
    internal static readonly string[] DataKeys =
        ["reward", "reward_command", "reward_timeout", "prompt_field", "answer_field", "instruction_suffix", "no_chat_template", "max_prompt_length", "over_length", "max_new_tokens",
         "max_turns", "search_topk", "retriever", "device", "threads"];

    public static Command Create()
    {
        var cmd = new Command("eval", "Evaluate on a test split: pass@1 and pass@k (unbiased estimator, k ≤ n samples). Either a run directory (its latest checkpoint, on its own test split or on --data) or a Hugging Face folder (--model) on --data.");
        var dir = new Argument<string?>("run") { Description = "Run directory (e.g. runs/ema-pg-reverse-s0); omit it with --model", Arity = ArgumentArity.ZeroOrOne };
        var modelDir = new Option<string?>("--model") { Description = "A Hugging Face model folder to evaluate (instead of a run)" };
        var data = new Option<string?>("--data") { Description = "Test split, JSONL or Parquet (verl's RL schema or question/answer rows)" };
        var samples = new Option<int>("--samples") { Description = "Samples per problem n, 1..1024", DefaultValueFactory = _ => 8 };
        var ks = new Option<string>("--k") { Description = "Comma-separated k values, each in [1, n]", DefaultValueFactory = _ => "1,4,8" };
        var problems = new Option<int>("--problems") { Description = "Test problems (0 = the whole split)", DefaultValueFactory = _ => 0 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature in (0, 10]; 1 samples the policy itself, small values approach greedy decoding", DefaultValueFactory = _ => 1.0 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table" };
        cmd.Arguments.Add(dir);
        foreach (var o in new Option[] { modelDir, data, temperature, samples, ks, problems, json }) cmd.Options.Add(o);
        var keys = ConfigOptions.Add(cmd, DataKeys);
        cmd.SetAction(pr =>
        {
            var runDir = pr.GetValue(dir);
            int n = Check.Range("--samples", pr.GetValue(samples), 1, 1024);
            var kList = pr.GetValue(ks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s =>
                int.TryParse(s, CultureInfo.InvariantCulture, out var k) ? Check.Range("--k", k, 1, n) : throw new UserError($"--k must be a comma-separated list of integers in [1, {n}], got '{s}'.")).Distinct().OrderBy(k => k).ToList();
            int maxProblems = Check.Range("--problems", pr.GetValue(problems), 0, 1_000_000);
            double temp = Check.Range("--temperature", pr.GetValue(temperature), 0.0, 10.0, minInclusive: false);
            var c = Config(runDir, pr.GetValue(modelDir), pr.GetValue(data), keys, pr);
            var report = ModelJobs.Evaluate(runDir, c, new EvalOptions { SamplesPerProblem = n, Ks = kList, MaxProblems = maxProblems, Seed = 777, Temperature = temp },
                w => Console.Error.WriteLine(w));
            var res = report.Result;
            if (pr.GetValue(json))
            {
                var o = new Dictionary<string, object?>
                {
                    ["subject"] = report.Subject, ["task"] = report.Task, ["iteration"] = report.Iteration, ["problems"] = res.CorrectCounts.Count, ["samples"] = n,
                    ["temperature"] = temp, ["pass_at_k"] = kList.ToDictionary(k => k.ToString(CultureInfo.InvariantCulture), k => res.PassAtK[k]), ["mean_reward"] = res.MeanReward,
                };
                Console.WriteLine(JsonSerializer.Serialize(o));
                return 0;
            }
            string after = report.Iteration is { } it ? $" after iteration {it}" : "";
            var t = new Table().Border(TableBorder.Rounded).Title($"{report.Subject}{after} on {report.Task}: {res.CorrectCounts.Count} test problems × {n} samples, T = {temp.ToString(CultureInfo.InvariantCulture)}").AddColumns("metric", "value");
            foreach (var k in kList) t.AddRow($"pass@{k}", res.PassAtK[k].ToString("P2", CultureInfo.InvariantCulture));
            t.AddRow("mean reward", res.MeanReward.ToString("F4", CultureInfo.InvariantCulture));
            t.AddRow("sampling tokens/s", res.TokensPerSecond.ToString("F0", CultureInfo.InvariantCulture));
            AnsiConsole.Write(t);
            return 0;
        });
        return cmd;
    }

    /// <summary>The config that names what to evaluate: the run's own (its test split, or --data), or a model folder on --data.</summary>
    private static TrainConfig Config(string? runDir, string? modelDir, string? data, ConfigOptions keys, ParseResult pr)
    {
        TrainConfig c;
        if (runDir is not null)
        {
            if (modelDir is not null) throw new UserError("give a run directory or --model, not both.");
            c = TrainRun.LoadRunConfig(runDir);
            if (data is not null) c = c with { Task = "dataset" };
        }
        else
        {
            if (modelDir is null || data is null) throw new UserError("give a run directory, or --model DIR with --data FILE.");
            c = new TrainConfig { Task = "dataset" };
            c = ConfigSchema.Find("model")!.Set(c, modelDir);
        }
        if (data is not null) c = ConfigSchema.Find("eval_data")!.Set(ConfigSchema.Find("data")!.Set(c, data), data);
        return keys.Apply(pr, c);
    }
}

using System.Globalization;
using System.Text.Json;
using EmaPg.Common;
using EmaPg.Model;
using EmaPg.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Training;

/// <summary>
/// A training run on disk: runs/&lt;name&gt;/ holds `config` (resolved), metrics.jsonl, tensorboard/,
/// learning-curves.png, checkpoint.bin and, at the end, summary.json. <see cref="Execute"/> starts a new
/// run or resumes one from its last checkpoint.
/// </summary>
public static class TrainRun
{
    public const string ConfigName = "config", CheckpointName = "checkpoint.bin", SummaryName = "summary.json";

    /// <summary>The embedded task; the test split is 512 problems, or a quarter of all problems when operands are that few (1-digit).</summary>
    public static ArithmeticTask MakeTask(TrainConfig c)
    {
        long distinct = c.TaskOperators.Distinct().Count() * (long)Math.Pow(10, 2 * Math.Min(c.TaskMaxDigits, 9));
        return new(new ArithmeticTaskConfig
        {
            MinDigits = c.TaskMinDigits, MaxDigits = c.TaskMaxDigits, Operators = c.TaskOperators, TestSize = (int)Math.Min(512, distinct / 4),
        });
    }

    public static ModelConfig MakeModelConfig(TrainConfig c, ITask task) => new ModelConfig
    {
        VocabSize = Math.Max(c.VocabSize, task.Tokenizer.VocabSize), HiddenSize = c.HiddenSize, IntermediateSize = c.IntermediateSize,
        NumHiddenLayers = c.NumLayers, NumAttentionHeads = c.NumHeads, NumKeyValueHeads = c.NumKvHeads,
        MaxPositionEmbeddings = Math.Max(128, 4 * (task.MaxResponseTokens + 16)),
    }.Validate();

    public static ColdStartConfig MakeSftConfig(TrainConfig c) =>
        new() { Steps = c.SftSteps, BatchSize = c.SftBatch, LearningRate = c.SftLearningRate, Seed = c.Seed + 1 };

    public static Device MakeDevice(TrainConfig c)
    {
        if (c.Device == "cuda" && !cuda.is_available())
            throw new UserError("device = cuda, but this TorchSharp build has no CUDA (only the CPU libtorch package is referenced).");
        return new Device(c.Device);
    }

    /// <summary>Runs (or resumes) to completion. <paramref name="onIteration"/> sees each iteration's metrics; <paramref name="log"/> gets status lines.</summary>
    public static TrainSummary Execute(TrainConfig c, string runDir, bool resume, Action<IterationReport>? onIteration = null, Action<string>? log = null,
        string cacheDir = "runs/.cache", Func<int, bool>? stopAfter = null)
    {
        var total = System.Diagnostics.Stopwatch.StartNew();
        Directory.CreateDirectory(runDir);
        if (c.Threads > 0) set_num_threads(c.Threads);
        manual_seed(c.Seed);
        var device = MakeDevice(c);
        var task = MakeTask(c);
        var modelConfig = MakeModelConfig(c, task);
        var ckptPath = Path.Combine(runDir, CheckpointName);
        if (!resume)
        {
            if (File.Exists(ckptPath)) throw new UserError($"run directory '{runDir}' already holds a run; use --resume {runDir} to continue it or --out to pick another directory.");
            WriteAtomically(Path.Combine(runDir, ConfigName), ConfigFile.Format(c));
        }

        // The base policy: supervised cold start, cached by its settings; its pass@1 is cached beside it.
        var sft = ColdStart.Run(modelConfig, task, MakeSftConfig(c), cacheDir, device, log);
        using var baseModel = sft.Model;
        var (basePass1, basePassK) = BaseScores(c, task, baseModel, sft.CheckpointPath, log);

        using var trainer = new Trainer(c, task, baseModel, basePass1, basePassK);
        int start = 1;
        if (resume && File.Exists(ckptPath))
        {
            trainer.LoadCheckpoint(ckptPath);
            start = trainer.State.Iteration + 1;
            log?.Invoke($"resumed {runDir} at iteration {start}");
        }
        using var metrics = new MetricsLog(runDir, start - 1);
        double lastPass1 = double.NaN, lastPassK = double.NaN;
        foreach (var row in metrics.History)
            if (row.TryGetValue("test_pass1", out var p1)) { lastPass1 = p1; lastPassK = row.GetValueOrDefault("test_passk", double.NaN); }

        for (int t = start; t <= c.Iterations; t++)
        {
            var m = trainer.Iteration(t);
            bool evalNow = t == c.Iterations || (c.EvalEvery > 0 && t % c.EvalEvery == 0);
            if (evalNow)
            {
                (lastPass1, lastPassK) = trainer.Evaluate();
                m["test_pass1"] = lastPass1;
                m["test_passk"] = lastPassK;
            }
            metrics.Write(t, m);
            if (t % c.CheckpointEvery == 0 || t == c.Iterations) trainer.SaveCheckpoint(ckptPath);
            onIteration?.Invoke(new IterationReport(t, c.Iterations, m));
            if (stopAfter?.Invoke(t) == true) return Summary(c, trainer, lastPass1, lastPassK, total.Elapsed.TotalSeconds);
        }
        LearningCurves.Save(metrics.History, Path.Combine(runDir, "learning-curves.png"), $"{c.Preset} (seed {c.Seed})");
        var summary = Summary(c, trainer, lastPass1, lastPassK, total.Elapsed.TotalSeconds);
        WriteAtomically(Path.Combine(runDir, SummaryName), JsonSerializer.Serialize(SummaryJson(summary), new JsonSerializerOptions { WriteIndented = true }));
        return summary;
    }

    private static TrainSummary Summary(TrainConfig c, Trainer tr, double p1, double pk, double totalSeconds)
    {
        var s = tr.State;
        return new TrainSummary(s.BasePass1, s.BasePassK, p1, pk, c.PassK, s.Iteration, s.WallSeconds,
            s.TrainTokens / Math.Max(1e-9, s.TrainSeconds), s.SampleTokens / Math.Max(1e-9, s.SampleSeconds), s.SkippedSteps, c.Preset, c.KlEstimator, c.Seed, totalSeconds);
    }

    public static Dictionary<string, object> SummaryJson(TrainSummary s) => new()
    {
        ["base_pass1"] = s.BasePass1, ["base_passk"] = s.BasePassK, ["final_pass1"] = s.FinalPass1, ["final_passk"] = s.FinalPassK,
        ["k"] = s.K, ["iterations"] = s.Iterations, ["wall_seconds"] = s.WallSeconds,
        ["train_tokens_per_second"] = s.TrainTokensPerSecond, ["sample_tokens_per_second"] = s.SampleTokensPerSecond,
        ["skipped_steps"] = s.SkippedSteps, ["total_seconds"] = s.TotalSeconds, ["preset"] = s.Preset, ["kl_estimator"] = s.KlEstimator, ["seed"] = s.Seed,
    };

    private static (double, double) BaseScores(TrainConfig c, ITask task, CausalLM model, string ckpt, Action<string>? log)
    {
        var path = $"{ckpt}.eval-{c.EvalProblems}-{c.EvalSamples}-{c.PassK}.json";
        if (File.Exists(path))
        {
            var d = JsonSerializer.Deserialize<Dictionary<string, double>>(File.ReadAllText(path))!;
            return (d["pass1"], d["passk"]);
        }
        var res = Eval.Evaluator.Evaluate(model, task, new Eval.EvalOptions
        {
            SamplesPerProblem = c.EvalSamples, Ks = c.PassK == 1 ? [1] : [1, c.PassK], MaxProblems = c.EvalProblems, Seed = 12345,
        });
        var scores = (res.PassAtK[1], res.PassAtK[c.PassK]);
        if (!string.IsNullOrEmpty(ckpt) && Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(ckpt))))
            WriteAtomically(path, JsonSerializer.Serialize(new Dictionary<string, double> { ["pass1"] = scores.Item1, ["passk"] = scores.Item2 }));
        log?.Invoke($"base policy: pass@1 {scores.Item1.ToString("P1", CultureInfo.InvariantCulture)}");
        return scores;
    }

    /// <summary>Reads a run directory's resolved config (for --resume and eval).</summary>
    public static TrainConfig LoadRunConfig(string runDir)
    {
        var path = Path.Combine(runDir, ConfigName);
        if (!File.Exists(path)) throw new UserError($"'{runDir}' is not a run directory (no '{ConfigName}' file).");
        return ConfigSchema.CrossValidate(ConfigFile.Load(new TrainConfig(), path));
    }

    public static void WriteAtomically(string path, string text)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }
}

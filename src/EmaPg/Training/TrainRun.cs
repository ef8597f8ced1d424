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
    public const string ConfigName = RunDirectory.ConfigName, CheckpointName = RunDirectory.CheckpointName, SummaryName = RunDirectory.SummaryName;

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
        new() { Steps = c.SftSteps, BatchSize = c.SftBatch, LearningRate = c.SftLearningRate, CosineDecay = c.SftCosineDecay, Seed = c.Seed + 1 };

    public static Device MakeDevice(TrainConfig c)
    {
        if (c.Device == "cuda" && !cuda.is_available())
            throw new UserError("device = cuda, but this TorchSharp build has no CUDA (only the CPU libtorch package is referenced).");
        return new Device(c.Device);
    }

    /// <summary>Whether <see cref="Execute"/> starts a new run, continues one from its checkpoint, or starts over one that never reached a checkpoint.</summary>
    public enum StartMode { New, Resume, Restart }

    /// <summary>
    /// Runs (or resumes) to completion. Everything that can be checked about <paramref name="c"/> is checked before the
    /// run directory is touched; the directory's rules (marker, lock, checkpoint rotation) are <see cref="RunDirectory"/>'s.
    /// <paramref name="onIteration"/> sees each iteration's metrics; <paramref name="log"/> gets status lines and warnings.
    /// </summary>
    public static TrainSummary Execute(TrainConfig c, string runDir, StartMode mode, Action<IterationReport>? onIteration = null, Action<string>? log = null,
        string cacheDir = "runs/.cache", Func<int, bool>? stopAfter = null)
    {
        var total = System.Diagnostics.Stopwatch.StartNew();
        // Everything that can be checked (ranges, combinations, the device, the data files) is checked before the run
        // directory is touched; the data are read once, here.
        ConfigSchema.CrossValidate(c);
        var device = MakeDevice(c);
        MakeSftConfig(c).Validate();
        if (c.Threads > 0) set_num_threads(c.Threads);
        manual_seed(c.Seed);
        using var inputs = RunInputs.Create(c, cacheDir);
        using var dir = mode == StartMode.Resume ? RunDirectory.OpenExisting(runDir) : RunDirectory.CreateNew(runDir, restart: mode == StartMode.Restart);
        if (mode != StartMode.Resume) AtomicFile.WriteAllText(dir.ConfigPath, ConfigFile.Format(c));
        var task = inputs.Task;
        foreach (var report in inputs.DataReports) log?.Invoke(report.ToString());
        log?.Invoke($"task {task.Name}: ready ({total.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)}s)");

        // The base policy: a Hugging Face folder as it is, or a built model after the supervised cold start (cached by its
        // settings, with its pass@1 cached beside it).
        CausalLM baseModel;
        string baseScoreKey = "";
        if (inputs.ModelDir is not null)
        {
            baseModel = inputs.CreatePolicy(device, c.Seed);
            log?.Invoke($"policy: {inputs.ModelDir} ({baseModel.ParameterCount:N0} parameters)");
        }
        else
        {
            var sft = ColdStart.Run(inputs.ModelConfig.Model, task, MakeSftConfig(c), cacheDir, device, log);
            baseModel = sft.Model;
            baseScoreKey = sft.CheckpointPath;
        }
        using var baseOwner = baseModel;
        var (basePass1, basePassK) = BaseScores(c, task, baseModel, baseScoreKey, log);

        using var rollout = MakeRolloutEngine(c, runDir, inputs, log);
        using var trainer = new Trainer(c, task, baseModel, basePass1, basePassK, rollout);
        int start = 1;
        if (mode == StartMode.Resume)
        {
            var used = dir.LoadCheckpoint(p => { trainer.LoadCheckpoint(p); return p; }, log);
            start = trainer.State.Iteration + 1;
            log?.Invoke($"resumed {runDir} at iteration {start} from {Path.GetFileName(used)}");
        }
        using var metrics = new MetricsLog(runDir, start - 1, log);
        double lastPass1 = double.NaN, lastPassK = double.NaN;
        long reportedFailures = 0;
        foreach (var row in metrics.History)
            if (row.TryGetValue("test_pass1", out var p1)) { lastPass1 = p1; lastPassK = row.GetValueOrDefault("test_passk", double.NaN); }

        for (int t = start; t <= c.Iterations; t++)
        {
            Dictionary<string, double> m;
            try { m = trainer.Iteration(t); }
            catch (RunDivergedError e)
            {
                int last = LastCheckpointIteration(c, start, t);
                string where = last > 0 ? $"The last good checkpoint is {dir.CheckpointPath} (iteration {last})" : "No checkpoint was written before it diverged";
                throw new RunDivergedError($"{e.Message} {where}; change the settings (learning_rate, kl_beta, grad_clip) and start a new run from its config.");
            }
            catch (Rollout.RolloutServersUnavailableError e)
            {
                // The state after iteration t − 1 is good: keep it, so that a restart loses no finished iteration.
                if (t > 1 && !(t - 1 == start - 1 || Trainer.IsCheckpointIteration(c, t - 1)))
                    dir.SaveCheckpoint(trainer.SaveCheckpoint, p => trainer.VerifyCheckpoint(p));
                throw new Rollout.RolloutServersUnavailableError(t > 1
                    ? $"iteration {t}: {e.Message} The checkpoint {dir.CheckpointPath} holds iteration {t - 1}."
                    : $"iteration 1: {e.Message} No iteration finished, so there is nothing to resume: start the run again with --restart.");
            }
            bool evalNow = t == c.Iterations || (c.EvalEvery > 0 && t % c.EvalEvery == 0);
            if (evalNow)
            {
                var evalClock = System.Diagnostics.Stopwatch.StartNew();
                (lastPass1, lastPassK) = trainer.Evaluate();
                m["test_pass1"] = lastPass1;
                m["test_passk"] = lastPassK;
                m["eval_seconds"] = evalClock.Elapsed.TotalSeconds;
            }
            metrics.Write(t, m);
            if (Trainer.IsCheckpointIteration(c, t))
            {
                dir.SaveCheckpoint(trainer.SaveCheckpoint, p => trainer.VerifyCheckpoint(p));
                if (c.SaveHf == "checkpoint" || (c.SaveHf == "end" && t == c.Iterations)) trainer.SaveModelFolders(dir, inputs.ModelConfig, inputs.TokenizerDir);
            }
            foreach (var failure in RewardFailures(inputs, ref reportedFailures)) m[failure.Key] = failure.Value;
            onIteration?.Invoke(new IterationReport(t, c.Iterations, m));
            if (stopAfter?.Invoke(t) == true) return Summary(c, trainer, lastPass1, lastPassK, total.Elapsed.TotalSeconds);
        }
        LearningCurves.Save(metrics.History, Path.Combine(runDir, "learning-curves.png"), $"{c.Preset} (seed {c.Seed})");
        var summary = Summary(c, trainer, lastPass1, lastPassK, total.Elapsed.TotalSeconds);
        AtomicFile.WriteAllText(dir.SummaryPath, JsonSerializer.Serialize(SummaryJson(summary), new JsonSerializerOptions { WriteIndented = true }));
        return summary;
    }

    /// <summary>The rollout engine a config names: in-process when rollout_servers is empty, else the HTTP servers, which load
    /// the policy from a Hugging Face folder written like policy/ (same config and tokenizer files).</summary>
    public static Rollout.IRolloutEngine MakeRolloutEngine(TrainConfig c, string runDir, RunInputs inputs, Action<string>? log)
    {
        if (c.RolloutServers.Length == 0) return new Rollout.LocalRolloutEngine();
        var options = new Rollout.HttpRolloutOptions
        {
            Servers = Rollout.HttpRolloutOptions.ParseServers(c.RolloutServers),
            WeightsDir = c.RolloutWeightsDir.Length > 0 ? c.RolloutWeightsDir : Path.Combine(runDir, "rollout-weights"),
            Api = c.RolloutApi == "sglang" ? Rollout.RolloutApi.Sglang : Rollout.RolloutApi.OpenAi,
            Reload = c.RolloutReload == "collective_rpc" ? Rollout.ReloadApi.CollectiveRpc : Rollout.ReloadApi.UpdateWeightsFromDisk,
            Concurrency = c.RolloutConcurrency,
            Timeout = TimeSpan.FromSeconds(c.RolloutTimeout),
        };
        return new Rollout.HttpRolloutEngine(options, (model, folder) => Model.HuggingFace.HfCheckpoint.Save(model, inputs.ModelConfig, folder, inputs.TokenizerDir), log);
    }

    /// <summary>
    /// The reward's failures (exceptions, timeouts, non-numbers: each scored 0) as metrics, so that none goes unreported;
    /// <c>reward_failures</c> counts those of this iteration's rollouts and evaluations.
    /// </summary>
    private static IEnumerable<KeyValuePair<string, double>> RewardFailures(RunInputs inputs, ref long reported)
    {
        if (inputs.Reward is null) return [];
        var r = inputs.Reward.Report();
        long fresh = r.Failures - reported;
        reported = r.Failures;
        return [new("reward_failures", fresh), new("reward_failures_total", r.Failures)];
    }

    /// <summary>The last iteration before <paramref name="failedAt"/> whose checkpoint exists (the one resumed from counts).</summary>
    private static int LastCheckpointIteration(TrainConfig c, int start, int failedAt) =>
        Enumerable.Range(1, Math.Max(0, failedAt - 1)).LastOrDefault(t => t == start - 1 || (t >= start && Trainer.IsCheckpointIteration(c, t)));

    private static TrainSummary Summary(TrainConfig c, Trainer tr, double p1, double pk, double totalSeconds)
    {
        var s = tr.State;
        return new TrainSummary(s.BasePass1, s.BasePassK, p1, pk, c.PassK, s.Iteration, s.WallSeconds,
            s.TrainTokens / Math.Max(1e-9, s.TrainSeconds), s.SampleTokens / Math.Max(1e-9, s.SampleSeconds), s.SkippedSteps, c.Preset, c.KlEstimator, c.Seed, totalSeconds);
    }

    /// <summary>summary.json's fields; a value that is not finite (e.g. no evaluation survived in a damaged run's metrics) is written as null, which JSON can hold.</summary>
    public static Dictionary<string, object?> SummaryJson(TrainSummary s) => new Dictionary<string, object?>
    {
        ["base_pass1"] = s.BasePass1, ["base_passk"] = s.BasePassK, ["final_pass1"] = s.FinalPass1, ["final_passk"] = s.FinalPassK,
        ["k"] = s.K, ["iterations"] = s.Iterations, ["wall_seconds"] = s.WallSeconds,
        ["train_tokens_per_second"] = s.TrainTokensPerSecond, ["sample_tokens_per_second"] = s.SampleTokensPerSecond,
        ["skipped_steps"] = s.SkippedSteps, ["total_seconds"] = s.TotalSeconds, ["preset"] = s.Preset, ["kl_estimator"] = s.KlEstimator, ["seed"] = s.Seed,
        ["host"] = HostInfo.ToJson(),
    }.ToDictionary(kv => kv.Key, kv => kv.Value is double d && !double.IsFinite(d) ? null : kv.Value);

    private static (double, double) BaseScores(TrainConfig c, ITask task, CausalLM model, string ckpt, Action<string>? log)
    {
        // Scores of a cached cold start are cached beside it; a model folder given by the user is evaluated every time.
        var path = ckpt.Length == 0 ? "" : $"{ckpt}.eval-{c.EvalProblems}-{c.EvalSamples}-{c.PassK}.json";
        if (path.Length > 0 && File.Exists(path))
        {
            try
            {
                var d = JsonSerializer.Deserialize<Dictionary<string, double>>(File.ReadAllText(path))!;
                return (d["pass1"], d["passk"]);
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or NullReferenceException)
            {
                log?.Invoke($"warning: the cached base-policy score '{path}' is unreadable; evaluating again.");
            }
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var res = Eval.Evaluator.Evaluate(model, task, new Eval.EvalOptions
        {
            SamplesPerProblem = c.EvalSamples, Ks = c.PassK == 1 ? [1] : [1, c.PassK], MaxProblems = c.EvalProblems, Seed = 12345,
        });
        var scores = (res.PassAtK[1], res.PassAtK[c.PassK]);
        if (path.Length > 0 && Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(ckpt))))
            AtomicFile.WriteAllText(path, JsonSerializer.Serialize(new Dictionary<string, double> { ["pass1"] = scores.Item1, ["passk"] = scores.Item2 }));
        log?.Invoke($"base policy: pass@1 {scores.Item1.ToString("P1", CultureInfo.InvariantCulture)} ({clock.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)}s)");
        return scores;
    }

    /// <summary>Reads a run directory's resolved config (for --resume and eval).</summary>
    public static TrainConfig LoadRunConfig(string runDir)
    {
        RunDirectory.RequireRun(runDir);
        var path = Path.Combine(runDir, ConfigName);
        if (!File.Exists(path)) throw new UserError($"'{runDir}' has no '{ConfigName}' file; it was not started completely.");
        return ConfigSchema.CrossValidate(ConfigFile.Load(new TrainConfig(), path));
    }
}

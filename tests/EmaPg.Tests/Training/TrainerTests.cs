using System.Text.Json;
using EmaPg.Model;
using EmaPg.Optim;
using EmaPg.Sampling;
using EmaPg.Tasks;
using EmaPg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Training;

/// <summary>Answer "7" to any prompt: a policy learns it in a few RL iterations from random init.</summary>
internal sealed class SaySevenTask : ITask
{
    private readonly CharTokenizer _tok = new("0123456789+-=");
    public string Name => "say-seven";
    public EmaPg.Tokenization.ITextTokenizer Tokenizer => _tok;
    public string Fingerprint => "say-seven/v1";
    public int MaxResponseTokens => 2;
    public IReadOnlyList<Problem> TestSplit { get; } = [new("1+1=", "7", "7"), new("2+2=", "7", "7")];
    public Problem SampleTrain(Random rng) => new($"{rng.Next(10)}+{rng.Next(10)}=", "7", "7");
    public int[] EncodePrompt(Problem p) => [_tok.BosId, .. _tok.Encode(p.Prompt)];
    public int[] EncodeSolution(Problem p) => [.. _tok.Encode(p.Solution), _tok.EosId];
    public double Reward(Problem p, IReadOnlyList<int> response) => response.Count > 0 && _tok.CharOf(response[0]) == '7' ? 1.0 : 0.0;
}

public class TrainerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emapg-trainer-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly TrainConfig TinyRl = new()
    {
        Seed = 3, PromptsPerIteration = 8, GroupSize = 8, MaxNewTokens = 2, LearningRate = 1e-2, Minibatches = 2,
        KlEstimator = "topk-reverse", KlTopK = 4, KlBeta = 0.01, EmaEta = 0.5, EmaPeriod = 2, GradClip = 1.0,
        EvalProblems = 2, EvalSamples = 2, PassK = 2,
    };

    private static DecoderLM RandomPolicy(ITask task, long seed = 5) => new(new ModelConfig
    {
        VocabSize = 20, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 1, NumAttentionHeads = 4, NumKeyValueHeads = 2,
        MaxPositionEmbeddings = 32,
    }, CPU, ScalarType.Float32, seed);

    [Theory]
    [InlineData("topk-reverse")]
    [InlineData("topk-forward")]
    [InlineData("k3")]
    public void RlRaisesRewardOnATriviallyLearnableTask(string estimator)
    {
        var task = new SaySevenTask();
        using var basePolicy = RandomPolicy(task);
        using var trainer = new Trainer(TinyRl with { KlEstimator = estimator }, task, basePolicy, 0, 0);
        var rewards = Enumerable.Range(1, 14).Select(t => trainer.Iteration(t)["reward_mean"]).ToList();
        double first = rewards.Take(3).Average(), last = rewards.TakeLast(3).Average();
        // A random 20-token policy says "7" about 1/20 of the time; 14 iterations must make it the habit.
        Assert.True(first < 0.3, $"first {first}");
        Assert.True(last > 0.8, $"rewards {string.Join(", ", rewards.Select(r => r.ToString("F2")))}");
        Assert.Equal(0, trainer.State.SkippedSteps);
    }

    /// <summary>An RPG preset's and the GSPO/CISPO presets' settings (policy loss, clip, aggregation, anchor schedule) on the tiny task: each must learn it.</summary>
    [Theory]
    [InlineData("rpg-fkl")]
    [InlineData("gspo")]
    [InlineData("cispo")]
    public void EveryPolicyLossPresetRaisesRewardOnATriviallyLearnableTask(string preset)
    {
        var task = new SaySevenTask();
        using var basePolicy = RandomPolicy(task);
        var c = ConfigFile.Apply(TinyRl, ConfigFile.PresetText(preset), preset) with { KlTopK = 4, KlBeta = 0.01, EmaPeriod = 2 };
        using var trainer = new Trainer(c, task, basePolicy, 0, 0);
        var rewards = Enumerable.Range(1, 14).Select(t => trainer.Iteration(t)["reward_mean"]).ToList();
        Assert.True(rewards.Take(3).Average() < 0.3 && rewards.TakeLast(3).Average() > 0.8, $"{preset}: rewards {string.Join(", ", rewards.Select(r => r.ToString("F2")))}");
        Assert.Equal(0, trainer.State.SkippedSteps);
    }

    [Fact]
    public void KlInTheRewardAndPerSequenceKlAggregationChangeTheUpdateAndOffLeaveItAsItWas()
    {
        var task = new SaySevenTask();
        double GradNorm(TrainConfig c)
        {
            using var basePolicy = RandomPolicy(task);
            using var trainer = new Trainer(c, task, basePolicy, 0, 0);
            trainer.Iteration(1);   // the anchor starts as the policy (KL = 0); after one update they differ
            return trainer.Iteration(2)["grad_norm"];
        }
        var c0 = TinyRl with { GradClip = 0, KlBeta = 0.5 };
        double plain = GradNorm(c0);
        Assert.Equal(plain, GradNorm(c0 with { KlAggMode = "token-mean" }));   // = loss_agg_mode: the same computation
        Assert.NotEqual(plain, GradNorm(c0 with { KlAggMode = "seq-mean-token-sum" }));
        Assert.NotEqual(plain, GradNorm(c0 with { KlInRewardCoef = 0.5 }));
    }

    [Fact]
    public void IterationsLeaveNoLiveTensorsBehind()
    {
        var task = new SaySevenTask();
        using var basePolicy = RandomPolicy(task);
        using var trainer = new Trainer(TinyRl, task, basePolicy, 0, 0);
        trainer.Iteration(1);
        trainer.Iteration(2);   // the anchor update (T_ema = 2) has run once too
        long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int t = 3; t <= 6; t++) trainer.Iteration(t);
        Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void IterationMetricsCoverWhatTheIssueLists()
    {
        var task = new SaySevenTask();
        using var basePolicy = RandomPolicy(task);
        using var trainer = new Trainer(TinyRl, task, basePolicy, 0, 0);
        var m = trainer.Iteration(1);
        foreach (var key in new[] { "reward_mean", "train_accuracy", "kl", "entropy", "clip_fraction", "is_weight_mean", "is_weight_max", "ema_lag",
                     "grad_norm", "sample_tokens_per_second", "train_tokens_per_second", "fisher_trace", "stability_margin", "stability_headroom" })
            Assert.True(m.ContainsKey(key) && double.IsFinite(m[key]), key);
        // First mini-batch is on-policy (s = 1), so the mean IS weight is close to 1 and the margin is α·β·tr F̂.
        Assert.InRange(m["is_weight_mean"], 0.5, 2.0);
        Assert.Equal(TinyRl.LearningRate * TinyRl.KlBeta * m["fisher_trace"], m["stability_margin"], 12);
        // Headroom to the schedule's boundary 1 + η^(−1/S), S = T_ema·Λ·minibatches = 2·1·2.
        Assert.Equal(1 + Math.Pow(TinyRl.EmaEta, -1.0 / 4) - m["stability_margin"], m["stability_headroom"], 12);
    }

    [Fact]
    public void NonFiniteLossOrGradientIsSkippedAndLeavesParametersUntouched()
    {
        var p = new TorchSharp.Modules.Parameter(tensor(new[] { 1.0f, 2.0f }));
        using var opt = new AdamW([p], lr: 0.1, weightDecay: 0);
        var before = p.detach().clone();

        var nanLoss = GuardedStep.Apply((p * float.NaN).sum(), opt, gradClip: 1.0);
        Assert.False(nanLoss.Applied);
        // Finite loss (0), infinite gradient: d/dx √|x − x₀| at x₀.
        var infGrad = GuardedStep.Apply((p - p.detach()).abs().sqrt().sum(), opt, gradClip: 1.0);
        Assert.False(infGrad.Applied);
        var noClip = GuardedStep.Apply((p - p.detach()).abs().sqrt().sum(), opt, gradClip: 0);
        Assert.False(noClip.Applied);
        Assert.True(p.eq(before).all().item<bool>());
        Assert.Equal(0, opt.StepCount);

        var ok = GuardedStep.Apply((p * p).sum(), opt, gradClip: 0);
        Assert.True(ok.Applied);
        Assert.Equal(Math.Sqrt(4 + 16), ok.GradNorm, 5);
        Assert.False(p.eq(before).all().item<bool>());
    }

    private TrainConfig TinyRun => new()
    {
        Seed = 1, Iterations = 6, HiddenSize = 32, IntermediateSize = 64, NumLayers = 1, NumHeads = 4, NumKvHeads = 2, VocabSize = 20,
        TaskMaxDigits = 1, SftSteps = 40, SftBatch = 32, SftLearningRate = 3e-3, PromptsPerIteration = 4, GroupSize = 4, MaxNewTokens = 3,
        KlTopK = 4, LearningRate = 3e-3, CheckpointEvery = 2, EvalEvery = 3, EvalProblems = 16, EvalSamples = 2, PassK = 2, Threads = 0,
    };

    private static readonly HashSet<string> TimingKeys = ["iteration_seconds", "sample_tokens_per_second", "train_tokens_per_second", "eval_seconds"];

    private static List<Dictionary<string, double>> Metrics(string runDir) =>
        MetricsLog.Read(runDir).Select(r => r.Where(kv => !TimingKeys.Contains(kv.Key)).ToDictionary()).ToList();

    [Fact]
    public void ResumedRunReproducesTheUninterruptedOne()
    {
        string cache = Path.Combine(_dir, "cache"), a = Path.Combine(_dir, "a"), b = Path.Combine(_dir, "b");
        var full = TrainRun.Execute(TinyRun, a, TrainRun.StartMode.New, cacheDir: cache);

        // "Killed" after iteration 5: the last checkpoint is from iteration 4, and line 5 of metrics.jsonl is
        // already written (plus a torn line, as a kill mid-write leaves), so resuming must redo iteration 5.
        TrainRun.Execute(TinyRun, b, TrainRun.StartMode.New, cacheDir: cache, stopAfter: t => t == 5);
        File.AppendAllText(Path.Combine(b, "metrics.jsonl"), "{\"iteration\":6,\"rew");
        Assert.False(File.Exists(Path.Combine(b, TrainRun.SummaryName)));
        var resumed = TrainRun.Execute(TrainRun.LoadRunConfig(b), b, TrainRun.StartMode.Resume, cacheDir: cache);

        var ma = Metrics(a);
        var mb = Metrics(b);
        // Append-only: the first session's iteration-5 row is still in the file, superseded by the resume event.
        var lines = File.ReadAllLines(Path.Combine(b, MetricsLog.FileName));
        Assert.Equal(2, lines.Count(l => l.StartsWith("{\"iteration\":5,")));
        Assert.Contains("{\"event\":\"resume\",\"iteration\":4}", lines);
        Assert.Equal(6, ma.Count);
        Assert.Equal(ma.Count, mb.Count);
        for (int i = 0; i < ma.Count; i++) Assert.Equal(ma[i], mb[i]);
        Assert.Equal(full.FinalPass1, resumed.FinalPass1);
        Assert.Equal(full.FinalPassK, resumed.FinalPassK);
        Assert.Equal(full.BasePass1, resumed.BasePass1);
        Assert.True(File.Exists(Path.Combine(b, TrainRun.SummaryName)));
        Assert.True(File.Exists(Path.Combine(b, "learning-curves.png")));
        // TensorBoard: the re-run iteration 5 is not logged twice, so both runs hold the same scalar events.
        Assert.Equal(TensorBoardScalarEvents(a), TensorBoardScalarEvents(b));
    }

    /// <summary>
    /// summary.json records what bit-identical metrics depend on (README, "Reproducible on one machine"): the seed, the torch
    /// thread count the run used, the TorchSharp and libtorch versions, the CPU and its SIMD level, the OS and the .NET runtime.
    /// </summary>
    [Fact]
    public void SummaryRecordsWhatReproducibilityDependsOn()
    {
        var run = Path.Combine(_dir, "summary");
        TrainRun.Execute(TinyRun with { Iterations = 1, Threads = 1, Seed = 4, EvalEvery = 1 }, run, TrainRun.StartMode.New, cacheDir: Path.Combine(_dir, "cache"));
        var root = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, TrainRun.SummaryName))).RootElement;
        Assert.Equal(4, root.GetProperty("seed").GetInt32());
        var host = root.GetProperty("host");
        Assert.Equal(1, host.GetProperty("torch_threads").GetInt32());
        Assert.Equal(typeof(TorchSharp.torch).Assembly.GetName().Version!.ToString(3), host.GetProperty("torchsharp").GetString());
        // The libtorch the package list pins (Directory.Packages.props) is the one TorchSharp reports loading.
        var pinned = System.Text.RegularExpressions.Regex.Match(File.ReadAllText(Path.Combine(EmaPg.Tests.Model.HuggingFace.HfFixtures.RepoRoot, "Directory.Packages.props")),
            "Include=\"libtorch-cpu-linux-x64\" Version=\"([^\"]+)\"").Groups[1].Value;
        Assert.StartsWith(pinned, host.GetProperty("libtorch").GetString());
        Assert.Equal(System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription, host.GetProperty("dotnet").GetString());
        Assert.Equal(System.Runtime.InteropServices.RuntimeInformation.OSDescription, host.GetProperty("os").GetString());
        var cpu = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("model name", StringComparison.Ordinal));
        Assert.Equal(cpu[(cpu.IndexOf(':') + 1)..].Trim(), host.GetProperty("processor").GetString());
        var flags = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("flags", StringComparison.Ordinal)).Split(' ');
        Assert.Equal(flags.Contains("avx512f") && flags.Contains("avx512bw") ? "avx512" : flags.Contains("avx2") ? "avx2" : "default",
            host.GetProperty("cpu_capability").GetString());
    }

    /// <summary>Records in a run's TFRecord event files, less each file's leading file_version record.</summary>
    private static int TensorBoardScalarEvents(string runDir)
    {
        var files = Directory.GetFiles(Path.Combine(runDir, "tensorboard"), "*tfevents*", SearchOption.AllDirectories);
        Assert.NotEmpty(files);
        int records = 0;
        foreach (var f in files)
        {
            using var r = new BinaryReader(File.OpenRead(f));
            int n = 0;
            while (r.BaseStream.Position < r.BaseStream.Length)
            {
                ulong len = r.ReadUInt64();   // TFRecord: length, crc(length), data, crc(data)
                r.BaseStream.Seek(4 + (long)len + 4, SeekOrigin.Current);
                n++;
            }
            Assert.Equal(r.BaseStream.Length, r.BaseStream.Position);
            records += n - 1;
        }
        return records;
    }

    [Fact]
    public void StartingOverAnExistingRunIsAUserError()
    {
        string cache = Path.Combine(_dir, "cache"), a = Path.Combine(_dir, "a");
        TrainRun.Execute(TinyRun with { Iterations = 2 }, a, TrainRun.StartMode.New, cacheDir: cache);
        var e = Assert.Throws<EmaPg.Common.UserError>(() => TrainRun.Execute(TinyRun with { Iterations = 2 }, a, TrainRun.StartMode.New, cacheDir: cache));
        Assert.Contains("--resume", e.Message);
    }
}

public class SeedMixTests
{
    [Fact]
    public void SeedsAreFixedAcrossProcessesAndDistinct()
    {
        // Pinned values: a resumed run in a new process must re-derive exactly these (System.HashCode would not).
        // (Computed independently with Python's SplitMix64 over the same packing.)
        Assert.Equal(12911486034764856967UL, EmaPg.Common.SeedMix.Mix(0, 1, 2));
        var seen = new HashSet<ulong>();
        for (int seed = 0; seed < 4; seed++)
            for (int it = 0; it < 50; it++)
                for (int salt = 0; salt < 4; salt++)
                    Assert.True(seen.Add(EmaPg.Common.SeedMix.Mix(seed, it, salt)));
        Assert.InRange(EmaPg.Common.SeedMix.MixInt(7, 3, 1), 0, int.MaxValue);
    }
}

/// <summary>The numerical guard: an update that leaves non-finite parameters or outputs is rolled back and counted; repeated failure stops the run.</summary>
public class TrainerGuardTests
{
    private static readonly TrainConfig Tiny = new()
    {
        Seed = 3, PromptsPerIteration = 4, GroupSize = 4, MaxNewTokens = 2, LearningRate = 1e-2, KlEstimator = "topk-reverse", KlTopK = 4,
        KlBeta = 0.01, EmaEta = 0.5, EmaPeriod = 2, EvalProblems = 2, EvalSamples = 2, PassK = 2, Iterations = 50, CheckpointEvery = 50,
    };

    private static DecoderLM Policy() => new(new ModelConfig
    {
        VocabSize = 20, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 1, NumAttentionHeads = 4, NumKeyValueHeads = 2, MaxPositionEmbeddings = 32,
    }, CPU, ScalarType.Float32, 5);

    private static void Poison(Trainer trainer)
    {
        using var _ = no_grad();
        trainer.Policy.parameters().First().fill_(float.NaN);
    }

    [Fact]
    public void NonFiniteSamplerInputsRollBackToTheLastGoodRollout()
    {
        var task = new SaySevenTask();
        using var basePolicy = Policy();
        using var trainer = new Trainer(Tiny, task, basePolicy, 0, 0);
        trainer.Iteration(1);
        Poison(trainer);   // as if iteration 1's update had diverged with a finite loss and gradient
        var m = trainer.Iteration(2);
        Assert.Equal(1, m["rolled_back"]);
        Assert.True(FiniteCheck.All(trainer.Policy.parameters()));
        Assert.True(double.IsFinite(m["kl"]));
        Assert.Equal(1, trainer.State.RolledBackSteps);
        Assert.Equal(0, trainer.Iteration(3)["rolled_back"]);
    }

    [Fact]
    public void ARunThatKeepsFailingStopsWithAClearMessage()
    {
        var task = new SaySevenTask();
        using var basePolicy = Policy();
        using var trainer = new Trainer(Tiny, task, basePolicy, 0, 0);
        trainer.Iteration(1);
        int t = 2;
        var e = Assert.Throws<RunDivergedError>(() =>
        {
            for (; t < 10; t++) { Poison(trainer); trainer.Iteration(t); }
        });
        Assert.Equal(1 + Trainer.MaxConsecutiveRollbacks, t);
        Assert.Contains("diverged", e.Message);
    }

    [Fact]
    public void WithoutSnapshotsADivergedPolicyStopsTheRunInsteadOfCrashingTheSampler()
    {
        var task = new SaySevenTask();
        using var basePolicy = Policy();
        using var trainer = new Trainer(Tiny with { GuardSnapshots = false }, task, basePolicy, 0, 0);
        trainer.Iteration(1);
        Poison(trainer);
        Assert.Contains("not finite", Assert.Throws<RunDivergedError>(() => trainer.Iteration(2)).Message);
    }
}

/// <summary>The trainer's fused-head path (hidden states → chunked head) computes what the full-logit path does.</summary>
public class FusedHeadTrainingTests
{
    private static DecoderLM Policy() => new(new ModelConfig
    {
        VocabSize = 20, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 1, NumAttentionHeads = 4, NumKeyValueHeads = 2, MaxPositionEmbeddings = 32,
    }, CPU, ScalarType.Float32, 5);

    [Theory]
    [InlineData("topk-reverse")]
    [InlineData("topk-forward")]
    [InlineData("k3")]
    public void AnIterationGivesTheSameMetricsFusedAndUnfused(string estimator)
    {
        var c = new TrainConfig
        {
            Seed = 3, PromptsPerIteration = 4, GroupSize = 4, MaxNewTokens = 2, LearningRate = 1e-2, KlEstimator = estimator, KlTopK = 4,
            KlBeta = 0.5, Minibatches = 2, EvalProblems = 2, EvalSamples = 2, PassK = 2,
        };
        var task = new SaySevenTask();
        using var basePolicy = Policy();
        using var unfused = new Trainer(c with { FusedHead = "off" }, task, basePolicy, 0, 0);
        using var fused = new Trainer(c with { FusedHead = "on" }, task, basePolicy, 0, 0);
        var a = unfused.Iteration(1);
        var b = fused.Iteration(1);
        foreach (var key in new[] { "kl", "pg_objective", "entropy", "grad_norm", "is_weight_mean", "reward_mean" })
            Assert.True(Math.Abs(a[key] - b[key]) <= 1e-5 * Math.Max(1, Math.Abs(a[key])), $"{key}: {a[key]} vs {b[key]}");
        // (Parameters are not compared: Adam turns float noise in gradients that are zero in exact arithmetic, such as
        // k_proj.bias's, into ±lr steps. The exact equality of the head's gradients is FusedTokenHeadTests' job.)
    }

    [Fact]
    public void TheScorerGivesTheSameLogProbsTopKAndGathersFused()
    {
        using var model = Policy();
        var g = new Generator(11);
        var seqs = randint(0, 20, [3, 9], generator: g);
        var attn = ones_like(seqs);
        var gather = randint(0, 20, [3, 5, 4], generator: g);
        using var _ = no_grad();
        var a = Scorer.Score(model, seqs, attn, 4, 0.8, gather, topK: 3);
        var b = Scorer.Score(model, seqs, attn, 4, 0.8, gather, topK: 3, fused: true);
        Assert.True(a.LogProbs.allclose(b.LogProbs, rtol: 1e-5, atol: 1e-6));
        Assert.True(a.GatheredLogProbs!.allclose(b.GatheredLogProbs!, rtol: 1e-5, atol: 1e-6));
        Assert.True(a.TopKIndices!.equal(b.TopKIndices!).all().item<bool>());
        Assert.True(a.TopKLogProbs!.allclose(b.TopKLogProbs!, rtol: 1e-5, atol: 1e-6));
        Assert.Throws<ArgumentException>(() => Scorer.Score(model, seqs, attn, 4, returnFull: true, fused: true));
    }
}

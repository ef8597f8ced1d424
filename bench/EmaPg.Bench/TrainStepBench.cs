using System.Diagnostics;
using EmaPg.Anchor;
using EmaPg.Common;
using EmaPg.Divergences;
using EmaPg.Model;
using EmaPg.Model.HuggingFace;
using EmaPg.Objectives;
using EmaPg.Optim;
using EmaPg.Sampling;
using EmaPg.Tasks;
using EmaPg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Bench;

public sealed record TrainStepBenchOptions
{
    /// <summary>A name of <see cref="HfConfig.KnownNames"/>: the model's exact config, randomly initialised.</summary>
    public string Like { get; init; } = "qwen2.5-0.5b";
    /// <summary>Tokens per update (rows × sequence length), a multiple of <see cref="SeqLen"/>.</summary>
    public int Tokens { get; init; } = 2048;
    /// <summary>Positions per row: <see cref="PromptLength"/> prompt tokens, the rest response tokens (which carry the loss).</summary>
    public int SeqLen { get; init; } = 512;
    public int PromptLength { get; init; } = 32;
    /// <summary>Timed updates per variant; medians are reported.</summary>
    public int Reps { get; init; } = 1;
    /// <summary>Untimed updates before the first variant's timed ones (each costs as much as a timed one on this machine; with none,
    /// the first timed update also first-touches the gradient buffers).</summary>
    public int Warmup { get; init; }
    /// <summary>Which (fused head, checkpointing) pairs to run, the default configuration (true, true) first.</summary>
    public IReadOnlyList<(bool Fused, bool Checkpointing)> Variants { get; init; } = AllVariants;
    public long Seed { get; init; }

    public static IReadOnlyList<(bool Fused, bool Checkpointing)> AllVariants { get; } = [(true, true), (false, true), (true, false), (false, false)];
    public static string VariantName((bool Fused, bool Checkpointing) v) => (v.Fused ? "fused" : "unfused") + (v.Checkpointing ? "+ckpt" : "");
}

/// <param name="SecondsMedian">median wall time of one update (forward, backward, AdamW step, EMA update)</param>
/// <param name="PeakRssBytes">VmHWM (process peak resident set) over this variant's updates, the peak counter reset before them</param>
/// <param name="PeakOverStatic">peak RSS ÷ the static state</param>
public sealed record TrainStepVariant(string Name, bool FusedHead, bool ActivationCheckpointing, IReadOnlyList<double> Seconds, double SecondsMedian,
    double TokensPerSecond, long? PeakRssBytes, double? PeakOverStatic, double Loss);

/// <param name="StaticBytes">policy + gradients + AdamW moments and scratch + EMA anchor (what any step holds regardless of tokens)</param>
public sealed record TrainStepBenchReport(
    string Benchmark, string Date, string Like, long Parameters, int Tokens, int Rows, int SeqLen, int PromptLength, int Reps, int Warmup,
    long StaticBytes, long RssBeforeBytes, IReadOnlyList<TrainStepVariant> Variants, string Estimator, int K,
    int ProcessorCount, int TorchThreads, string Os, string TorchSharp);

/// <summary>
/// `emapg bench train-step`: one EMA-PG update as the trainer does it (<see cref="PolicyUpdater"/>: policy forward and backward
/// with the clip-higher loss and β·Top-k reverse KL, a guarded AdamW step; then <see cref="EmaAnchor.Update"/>) on a randomly
/// initialised model with a real model's config, on synthetic rollouts (random tokens, log-probs of a uniform policy, random
/// advantages and q). Each (fused head, checkpointing) variant runs on the same policy, optimiser and anchor, so the static
/// state is the same; the default (fused + checkpointing) runs first and its peak includes the first update, which
/// allocates the gradients. Peak memory is the process's VmHWM, reset (clear_refs) before each variant: everything the
/// process holds counts (runtime, libtorch, the static state, activations).
/// </summary>
public static class TrainStepBench
{
    public static TrainStepBenchReport Run(TrainStepBenchOptions o, Action<string>? progress = null)
    {
        Check.Range("--seq-len", o.SeqLen, 2, 1 << 16);
        Check.Range("--prompt-length", o.PromptLength, 1, o.SeqLen - 1);
        Check.Range("--tokens", o.Tokens, o.SeqLen, 1 << 22);
        if (o.Tokens % o.SeqLen != 0) throw new UserError($"--tokens must be a multiple of --seq-len ({o.SeqLen}), got {o.Tokens}.");
        Check.Range("--reps", o.Reps, 1, 100);
        Check.Range("--warmup", o.Warmup, 0, 100);
        if (o.Variants.Count == 0) throw new UserError("--variants must name at least one variant.");
        var modelConfig = HfConfig.Parse(HfConfig.Known(o.Like), $"--like {o.Like}").Model;
        if (o.SeqLen > modelConfig.MaxPositionEmbeddings) throw new UserError($"--seq-len must be ≤ max_position_embeddings ({modelConfig.MaxPositionEmbeddings}), got {o.SeqLen}.");

        progress?.Invoke($"initialising a random {o.Like} (float32) and its anchor");
        using var policy = new DecoderLM(modelConfig, CPU, ScalarType.Float32, o.Seed);
        policy.train();
        using var anchor = new DecoderLM(modelConfig, CPU, ScalarType.Float32, o.Seed);   // = policy.Clone(), without a second init and copy
        anchor.eval();
        foreach (var p in anchor.parameters()) p.requires_grad = false;
        var config = new TrainConfig { Minibatches = 1, InnerUpdates = 1, Seed = (int)o.Seed };
        using var opt = new AdamW(policy.parameters(), config.LearningRate, config.AdamBeta1, config.AdamBeta2, config.AdamEps, config.WeightDecay);
        var kl = Estimators.Get(config.KlEstimator);
        long paramBytes = policy.parameters().Sum(p => p.numel() * p.element_size());
        long scratch = policy.parameters().Max(p => p.numel() * p.element_size());
        long staticBytes = 4 * paramBytes + scratch + anchor.parameters().Sum(p => p.numel() * p.element_size());

        int rows = o.Tokens / o.SeqLen;
        var x = SyntheticExperience(modelConfig.VocabSize, rows, o.PromptLength, o.SeqLen - o.PromptLength, config.KlTopK, o.Seed);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long rssBefore = MemoryProbe.RssAvailable ? MemoryProbe.RssBytes() : 0;
        var results = new List<TrainStepVariant>();
        bool warmedUp = false;
        foreach (var v in o.Variants)
        {
            string name = TrainStepBenchOptions.VariantName(v);
            policy.ActivationCheckpointing = v.Checkpointing;
            var updater = new PolicyUpdater(config, policy, opt, kl, new EstimatorOptions { SMin = config.IsClipMin, SMax = config.IsClipMax }.Validated(),
                LossAggregation.Parse(config.LossAggMode), PolicyLosses.Get(config.PolicyLoss), checkFinite: false, v.Fused);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            if (MemoryProbe.RssAvailable) MemoryProbe.ResetPeak();
            for (int w = 0; w < o.Warmup && !warmedUp; w++)
            {
                var sw0 = Stopwatch.StartNew();
                Update(updater, anchor, policy, x, 0);
                progress?.Invoke($"{name}: warm-up update {w + 1}/{o.Warmup} {sw0.Elapsed.TotalSeconds:0.0} s");
            }
            warmedUp = true;
            var seconds = new List<double>();
            double loss = double.NaN;
            for (int r = 0; r < o.Reps; r++)
            {
                var sw = Stopwatch.StartNew();
                loss = Update(updater, anchor, policy, x, r + 1);
                seconds.Add(sw.Elapsed.TotalSeconds);
                progress?.Invoke($"{name}: update {r + 1}/{o.Reps} {seconds[^1]:0.0} s" + (MemoryProbe.RssAvailable ? $", peak RSS so far {MemoryProbe.PeakRssBytes() / 1048576.0:0} MiB" : ""));
            }
            long? peak = MemoryProbe.RssAvailable ? MemoryProbe.PeakRssBytes() : null;
            double med = BenchStats.Median(seconds);
            results.Add(new TrainStepVariant(name, v.Fused, v.Checkpointing, seconds, med, o.Tokens / med, peak,
                peak is { } pk ? (double)pk / staticBytes : null, loss));
        }
        x.Generation.Dispose();
        return new TrainStepBenchReport("train-step", BenchStats.UtcNow(), o.Like, policy.ParameterCount, o.Tokens, rows, o.SeqLen, o.PromptLength, o.Reps, o.Warmup,
            staticBytes, rssBefore, results, config.KlEstimator, config.KlTopK, Environment.ProcessorCount, torch.get_num_threads(), BenchStats.Os, BenchStats.TorchSharpVersion);
    }

    /// <summary>One update: the trainer's policy update (one mini-batch) then the anchor's EMA step. Returns the mean KL (a finiteness witness).</summary>
    private static double Update(PolicyUpdater updater, CausalLM anchor, CausalLM policy, Experience x, int t)
    {
        using var scope = NewDisposeScope();
        var stats = updater.Update(x, t + 1);
        if (stats.Applied != 1) throw new InvalidOperationException($"train-step: the update was not applied (skipped {stats.Skipped}).");
        EmaAnchor.Update(anchor, policy, 0.9);
        return stats.Kl;
    }

    /// <summary>Rollouts as the experience maker would hand them over, with log-probs of a uniform policy (what a random init is close to).</summary>
    private static Experience SyntheticExperience(int vocab, int rows, int promptLength, int responseLength, int k, long seed)
    {
        var g = new Generator((ulong)seed + 1, CPU);
        var prompt = randint(0, vocab, [rows, promptLength], generator: g, dtype: ScalarType.Int64);
        var response = randint(0, vocab, [rows, responseLength], generator: g, dtype: ScalarType.Int64);
        var mask = ones(rows, responseLength);
        float uniform = -(float)Math.Log(vocab);
        var logp = full(rows, responseLength, uniform);
        var q = randint(0, vocab, [rows, responseLength, k], generator: g, dtype: ScalarType.Int64);
        var gen = new GenerationResult(prompt, ones_like(prompt), response, mask, logp, q,
            Enumerable.Range(0, rows).Select(_ => new int[responseLength]).ToArray(), new bool[rows]);
        return new Experience
        {
            Problems = Enumerable.Range(0, rows).Select(i => new Problem("", "", "")).ToArray(),
            Generation = gen,
            Sequences = gen.Sequences(),
            AttentionMask = gen.AttentionMask(),
            LossMask = mask,
            SamplingLogp = logp,
            OldLogp = logp,
            AnchorLogp = logp,
            Q = q,
            AnchorLogpQ = full(rows, responseLength, k, uniform),
            Rewards = new double[rows],
            Advantages = randn(rows, generator: g),
            SampledTokens = rows * responseLength,
            SampleSeconds = 0,
        };
    }
}

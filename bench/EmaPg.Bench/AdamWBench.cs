using System.Diagnostics;
using EmaPg.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Bench;

/// <summary>Settings of <see cref="AdamWBench"/>; the CLI validates them (emapg bench adamw).</summary>
public sealed record AdamWBenchOptions
{
    /// <summary>Models whose parameters are optimised, by name; each is a Qwen2-shaped decoder.</summary>
    public IReadOnlyList<(string Name, ModelConfig Config)> Models { get; init; } = DefaultModels;
    /// <summary>Timed steps per optimiser and model, after <see cref="Warmup"/> untimed ones.</summary>
    public int Reps { get; init; } = 10;
    public int Warmup { get; init; } = 2;
    public int Seed { get; init; }
    public bool Quick { get; init; }

    /// <summary>
    /// A GPT-2-small-sized Qwen2 (116.6M parameters: |V| 32000 tied, hidden 768, 12 layers, 12 heads, SwiGLU 2304)
    /// and the trainer's default policy (0.6M).
    /// </summary>
    public static IReadOnlyList<(string, ModelConfig)> DefaultModels =>
    [
        ("qwen2-117m", new ModelConfig { VocabSize = 32000, HiddenSize = 768, IntermediateSize = 2304, NumHiddenLayers = 12, NumAttentionHeads = 12, NumKeyValueHeads = 12 }),
        ("trainer-default", new ModelConfig { VocabSize = 64 }),
    ];

    /// <summary>The tiny problem of --quick (tests, smoke runs): figures from it mean nothing.</summary>
    public static AdamWBenchOptions QuickDefaults => new()
    {
        Models = [("tiny", new ModelConfig { VocabSize = 32, HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 1, NumAttentionHeads = 2, NumKeyValueHeads = 1 })],
        Reps = 3,
        Warmup = 1,
        Quick = true,
    };
}

/// <summary>One optimiser on one model.</summary>
public sealed record AdamWMeasurement(
    string Optimizer,
    double StepMsMedian,
    double StepMsMin,
    double StepMsMax,
    IReadOnlyList<double> StepsMs,
    long? FirstStepPeakRssExtraBytes,
    long? SteadyStepPeakRssExtraBytesMedian);

public sealed record AdamWBenchRow(
    string Model,
    long Parameters,
    AdamWMeasurement Torch,
    AdamWMeasurement Ours,
    double? TimeRatio,
    double? FirstStepMemoryRatio,
    double MaxParameterDifference);

public sealed record AdamWBenchReport(
    string Benchmark,
    string Date,
    int Reps,
    int Warmup,
    bool Quick,
    int TorchThreads,
    int ProcessorCount,
    string Os,
    string TorchSharp,
    bool PeakRssAvailable,
    IReadOnlyDictionary<string, string> Definitions,
    IReadOnlyList<AdamWBenchRow> Rows);

/// <summary>
/// TorchSharp's <c>torch.optim.AdamW</c> against <see cref="Optim.AdamW"/> (in place, preallocated state) on the
/// parameters of a Qwen2-shaped model: the step alone, with a fixed gradient, on the CPU. Two identical models get
/// identical gradients; each optimiser steps its own, interleaved (the order alternates every step), in one
/// process; medians are reported because the machine is shared. Both take the same number of steps with the same
/// hyper-parameters, so their parameters must end up equal: the report gives the largest difference.
/// </summary>
public static class AdamWBench
{
    public const string TorchName = "torch.optim.AdamW";
    public const string OursName = "EmaPg.Optim.AdamW";
    private const double Lr = 1e-3, Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8, WeightDecay = 0.01;

    public static readonly IReadOnlyDictionary<string, string> Definitions = new Dictionary<string, string>
    {
        ["step"] = $"Wall time of one optimizer.step() over every parameter (lr {Lr}, betas ({Beta1}, {Beta2}), eps {Eps}, weight decay {WeightDecay}, amsgrad off). "
            + "The gradient is fixed (standard normal, set once by a backward pass) and not zeroed, so only the update is timed. Median over the timed steps; the untimed warm-up steps come first.",
        ["first-step peak RSS extra"] = "Measured: peak resident set during the optimiser's construction and first step (VmHWM after resetting it through /proc/self/clear_refs) minus the resident set before: its state (TorchSharp creates exp_avg and exp_avg_sq lazily at the first step; ours preallocates m, v and one scratch buffer the size of the largest parameter) plus the step's temporaries. Meaningless below a few MiB (page granularity, the managed heap, malloc arenas: it can even be negative).",
        ["steady-step peak RSS extra"] = "Measured: the same for each timed step, median: the temporaries a step allocates beyond what the allocator already holds.",
        ["max |Δθ|"] = "Largest absolute difference between the two models' parameters after the same steps: the optimisers compute the same update.",
        ["not measured"] = "Forward and backward passes, gradient clipping, GPUs (CUDA libtorch is not available here).",
    };

    public static AdamWBenchReport Run(AdamWBenchOptions o, Action<string>? progress = null)
    {
        bool rss = MemoryProbe.RssAvailable;
        var rows = o.Models.Select(m => RunModel(m.Name, m.Config, o, rss, progress)).ToList();
        return new AdamWBenchReport("adamw", BenchStats.UtcNow(), o.Reps, o.Warmup, o.Quick,
            torch.get_num_threads(), Environment.ProcessorCount, BenchStats.Os, BenchStats.TorchSharpVersion, rss, Definitions, rows);
    }

    private static DecoderLM ModelWithGradient(ModelConfig config, int seed)
    {
        var model = new DecoderLM(config, seed: seed);
        using var gen = new Generator((ulong)seed + 1, CPU);
        foreach (var p in model.parameters())
        {
            // d/dp Σ(p·g) = g: one parameter at a time keeps the temporaries small.
            using var scope = NewDisposeScope();
            (p * randn(p.shape, dtype: p.dtype, generator: gen)).sum().backward();
        }
        return model;
    }

    private interface IStepper : IDisposable { void Step(); }

    private sealed class TorchStepper(IEnumerable<TorchSharp.Modules.Parameter> ps) : IStepper
    {
        private readonly optim.Optimizer _opt = optim.AdamW(ps, Lr, Beta1, Beta2, Eps, WeightDecay);
        public void Step() => _opt.step();
        public void Dispose() => _opt.Dispose();
    }

    private sealed class OursStepper(IEnumerable<TorchSharp.Modules.Parameter> ps) : IStepper
    {
        private readonly Optim.AdamW _opt = new(ps, Lr, Beta1, Beta2, Eps, WeightDecay);
        public void Step() => _opt.Step();
        public void Dispose() => _opt.Dispose();
    }

    private sealed class Track
    {
        public long Rss0;
        public long? FirstPeak;
        public readonly List<double> Ms = [];
        public readonly List<long> SteadyPeaks = [];
    }

    private static AdamWBenchRow RunModel(string name, ModelConfig config, AdamWBenchOptions o, bool rss, Action<string>? progress)
    {
        progress?.Invoke($"{name}: building two identical models and their gradients");
        using var a = ModelWithGradient(config, o.Seed);
        using var b = ModelWithGradient(config, o.Seed);
        long n = a.ParameterCount;

        var tracks = new[] { new Track(), new Track() };
        var steppers = new IStepper?[2];
        IStepper Make(int i) => i == 0 ? new TorchStepper(a.parameters()) : new OursStepper(b.parameters());
        try
        {
            // First step (construction included) one optimiser at a time, so each peak is its own; ours first,
            // because it frees nothing, whereas blocks that TorchSharp's temporaries leave in glibc's heap would
            // serve the next allocations without raising the resident set.
            foreach (int i in new[] { 1, 0 })
            {
                var t = tracks[i];
                if (rss) { MemoryProbe.ResetPeak(); t.Rss0 = MemoryProbe.RssBytes(); }
                steppers[i] = Make(i);
                steppers[i]!.Step();
                if (rss) t.FirstPeak = MemoryProbe.PeakRssBytes() - t.Rss0;
            }
            for (int w = 1; w < o.Warmup; w++) { steppers[0]!.Step(); steppers[1]!.Step(); }
            for (int r = 0; r < o.Reps; r++)
            {
                foreach (int i in r % 2 == 0 ? new[] { 0, 1 } : [1, 0])
                {
                    long before = 0;
                    if (rss) { MemoryProbe.ResetPeak(); before = MemoryProbe.RssBytes(); }
                    var sw = Stopwatch.StartNew();
                    steppers[i]!.Step();
                    sw.Stop();
                    tracks[i].Ms.Add(sw.Elapsed.TotalMilliseconds);
                    if (rss) tracks[i].SteadyPeaks.Add(MemoryProbe.PeakRssBytes() - before);
                }
                progress?.Invoke($"{name}: step {r + 1}/{o.Reps}: torch {tracks[0].Ms[^1]:0.0} ms, ours {tracks[1].Ms[^1]:0.0} ms");
            }

            double maxDiff;
            using (NewDisposeScope())
            using (no_grad())
                maxDiff = a.parameters().Zip(b.parameters()).Max(pq => (pq.First - pq.Second).abs().max().item<float>());

            AdamWMeasurement M(int i, string optName)
            {
                var t = tracks[i];
                return new AdamWMeasurement(optName, BenchStats.Median(t.Ms), t.Ms.DefaultIfEmpty(double.NaN).Min(), t.Ms.DefaultIfEmpty(double.NaN).Max(), t.Ms,
                    t.FirstPeak, rss ? (long)BenchStats.Median(t.SteadyPeaks.Select(x => (double)x).ToList()) : null);
            }
            var torchM = M(0, TorchName);
            var ours = M(1, OursName);
            return new AdamWBenchRow(name, n, torchM, ours, BenchStats.Ratio(torchM.StepMsMedian, ours.StepMsMedian),
                BenchStats.Ratio(torchM.FirstStepPeakRssExtraBytes, ours.FirstStepPeakRssExtraBytes), maxDiff);
        }
        finally
        {
            foreach (var s in steppers) s?.Dispose();
        }
    }
}

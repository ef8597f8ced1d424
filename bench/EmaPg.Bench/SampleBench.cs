using System.Diagnostics;
using EmaPg.Common;
using EmaPg.Model;
using EmaPg.Model.HuggingFace;
using EmaPg.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Bench;

public sealed record SampleBenchOptions
{
    /// <summary>A name of <see cref="HfConfig.KnownNames"/>: the model's exact config, randomly initialised (float32).</summary>
    public string Like { get; init; } = "qwen2.5-0.5b";
    public int Batch { get; init; } = 64;
    public int NewTokens { get; init; } = 64;
    public int PromptLength { get; init; } = 16;
    /// <summary>Top-k indices the sampler returns per token (the trainer's q); 0 = none.</summary>
    public int ReturnTopK { get; init; } = 32;
    /// <summary>Timed generations; medians are reported.</summary>
    public int Reps { get; init; } = 3;
    public long Seed { get; init; }
    /// <summary>config.json overrides key=value applied to the <see cref="Like"/> config (<see cref="HfConfig.WithOverrides"/>).</summary>
    public IReadOnlyList<string> Set { get; init; } = [];
}

/// <param name="GenerateSecondsMedian">median wall time of <see cref="Sampler.Generate"/> (prefill + new_tokens − 1 decoding steps)</param>
/// <param name="TokensPerSecond">batch × new tokens ÷ that time</param>
/// <param name="StepGemmMsMedian">the floor of one decoding step: every linear layer's GEMM on [batch, in] and the LM head's [batch, H]·[H, |V|], timed alone</param>
/// <param name="PrefillGemmMsMedian">the linear layers' GEMMs on [batch × prompt length, in] and the head's on the last position's [batch, H]: the prefill's floor</param>
/// <param name="FloorSeconds">prefill floor + (new tokens − 1) × step floor</param>
/// <param name="GenerateOverFloor">generation time ÷ floor</param>
public sealed record SampleBenchReport(
    string Benchmark, string Date, string Like, long Parameters, int Batch, int NewTokens, int PromptLength, int ReturnTopK, int Reps,
    IReadOnlyList<double> GenerateSeconds, double GenerateSecondsMedian, double TokensPerSecond,
    double StepGemmMsMedian, double PrefillGemmMsMedian, double FloorSeconds, double GenerateOverFloor, double FloorTokensPerSecond,
    int ProcessorCount, int TorchThreads, string Os, string TorchSharp);

/// <summary>
/// `emapg bench sample`: KV-cached batched sampling (<see cref="Sampler.Generate"/>, full distribution at temperature 1, no stop
/// token, so every row decodes every step) of a randomly initialised real-shape model, against its floor measured in the same
/// process: the GEMMs of the linear layers and the LM head for the same batch, alone (attention over the cache, norms, RoPE,
/// softmax and sampling are what the sampler adds).
/// </summary>
public static class SampleBench
{
    public static SampleBenchReport Run(SampleBenchOptions o, Action<string>? progress = null)
    {
        Check.Range("--batch", o.Batch, 1, 4096);
        Check.Range("--new-tokens", o.NewTokens, 1, 4096);
        Check.Range("--prompt-length", o.PromptLength, 1, 4096);
        Check.Range("--reps", o.Reps, 1, 100);
        string source = o.Set.Count == 0 ? $"--like {o.Like}" : $"--like {o.Like} with --set {string.Join(" ", o.Set)}";
        var config = HfConfig.Parse(HfConfig.WithOverrides(HfConfig.Known(o.Like), o.Set), source).Model;
        Check.Range("--return-top-k", o.ReturnTopK, 0, config.VocabSize);
        progress?.Invoke($"initialising a random {o.Like} (float32)");
        using var model = new DecoderLM(config, CPU, ScalarType.Float32, o.Seed);
        model.eval();
        var rng = new Random((int)o.Seed);
        var prompts = Enumerable.Range(0, o.Batch).Select(_ => Enumerable.Range(0, o.PromptLength).Select(_ => rng.Next(config.VocabSize)).ToArray()).ToList();
        var options = new SamplingOptions { MaxNewTokens = o.NewTokens, ReturnTopK = o.ReturnTopK };

        // Floor first: one warm-up pass each, then the timed ones interleaved with the generations below share the machine's state.
        var layers = model.named_parameters().Where(p => p.name.StartsWith("model.layers.", StringComparison.Ordinal) && p.parameter.dim() == 2)
            .Select(p => (Tensor)p.parameter).ToList();
        var weights = layers.Append(model.LmHeadWeight).ToList();
        var stepMs = new List<double>();
        var prefillMs = new List<double>();
        var seconds = new List<double>();
        using var gen = new Generator((ulong)o.Seed + 1, CPU);
        Gemms(weights, o.Batch);
        for (int r = 0; r < o.Reps; r++)
        {
            stepMs.Add(Gemms(weights, o.Batch));
            // The prefill needs next-token logits at the last prompt position only: the head's GEMM on the batch's rows.
            prefillMs.Add(Gemms(layers, (long)o.Batch * o.PromptLength) + Gemms([model.LmHeadWeight], o.Batch));
            var sw = Stopwatch.StartNew();
            using (var result = Sampler.Generate(model, prompts, options, gen))
                if (result.ResponseLength != o.NewTokens) throw new InvalidOperationException($"sample: {result.ResponseLength} tokens generated, {o.NewTokens} asked.");
            seconds.Add(sw.Elapsed.TotalSeconds);
            progress?.Invoke($"generation {r + 1}/{o.Reps}: {seconds[^1]:0.00} s; step GEMMs {stepMs[^1]:0.0} ms, prefill GEMMs {prefillMs[^1]:0.0} ms");
        }
        double genMed = BenchStats.Median(seconds), stepMed = BenchStats.Median(stepMs), prefillMed = BenchStats.Median(prefillMs);
        double floor = (prefillMed + (o.NewTokens - 1) * stepMed) / 1e3;
        long tokens = (long)o.Batch * o.NewTokens;
        return new SampleBenchReport("sample", BenchStats.UtcNow(), o.Set.Count == 0 ? o.Like : $"{o.Like} with {string.Join(" ", o.Set)}", model.ParameterCount, o.Batch, o.NewTokens, o.PromptLength, o.ReturnTopK, o.Reps,
            seconds, genMed, tokens / genMed, stepMed, prefillMed, floor, genMed / floor, tokens / floor,
            Environment.ProcessorCount, torch.get_num_threads(), BenchStats.Os, BenchStats.TorchSharpVersion);
    }

    /// <summary>Milliseconds of x·Wᵀ for every weight W [out, in] with x [rows, in] (inputs made before the clock starts).</summary>
    private static double Gemms(IReadOnlyList<Tensor> weights, long rows)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var inputs = weights.Select(w => w.shape[1]).Distinct().ToDictionary(h => h, h => randn(rows, h));
        var outs = weights.Select(w => empty(rows, w.shape[0])).ToList();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < weights.Count; i++)
            outs[i].addmm_(inputs[weights[i].shape[1]], weights[i].t(), beta: 0);
        return sw.Elapsed.TotalMilliseconds;
    }
}

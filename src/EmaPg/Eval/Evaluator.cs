using System.Diagnostics;
using EmaPg.Common;
using EmaPg.Model;
using EmaPg.Sampling;
using EmaPg.Tasks;
using EmaPg.Tokenization;
using static TorchSharp.torch;

namespace EmaPg.Eval;

/// <summary>How to evaluate on the test split.</summary>
public sealed record EvalOptions
{
    /// <summary>n, samples per problem; pass@k is reported for every k in <see cref="Ks"/> with k ≤ n.</summary>
    public int SamplesPerProblem { get; init; } = 1;
    public IReadOnlyList<int> Ks { get; init; } = [1];
    public double Temperature { get; init; } = 1.0;
    /// <summary>Sequences per sampling batch (problems × samples are flattened into batches).</summary>
    public int BatchSize { get; init; } = 256;
    public ulong Seed { get; init; } = 12345;
    /// <summary>Evaluate only the first this many test problems; 0 = all.</summary>
    public int MaxProblems { get; init; }

    public EvalOptions Validate()
    {
        Check.Range("samples per problem", SamplesPerProblem, 1, 1 << 16);
        foreach (var k in Ks) Check.Range("pass@k k", k, 1, SamplesPerProblem);
        Check.Range("eval temperature", Temperature, 0.0, double.PositiveInfinity, minInclusive: false);
        Check.Range("eval batch size", BatchSize, 1, 1 << 20);
        Check.Range("eval max problems", MaxProblems, 0, int.MaxValue);
        return this;
    }
}

/// <summary>Outcome of <see cref="Evaluator.Evaluate"/>.</summary>
public sealed record EvalResult(
    IReadOnlyDictionary<int, double> PassAtK,
    IReadOnlyList<int> CorrectCounts,
    int SamplesPerProblem,
    double MeanReward,
    long GeneratedTokens,
    double Seconds)
{
    public double TokensPerSecond => Seconds > 0 ? GeneratedTokens / Seconds : double.NaN;
}

public static class Evaluator
{
    /// <summary>
    /// Samples n responses for each test problem (full distribution, no filtering) and computes
    /// pass@k with the unbiased estimator. Seeded by <see cref="EvalOptions.Seed"/> so repeated
    /// evaluations of the same model agree. Leaves the global RNG untouched.
    /// </summary>
    public static EvalResult Evaluate(CausalLM model, ITask task, EvalOptions? options = null)
    {
        var o = (options ?? new EvalOptions()).Validate();
        var problems = o.MaxProblems > 0 ? task.TestSplit.Take(o.MaxProblems).ToList() : task.TestSplit.ToList();
        var jobs = problems.SelectMany((p, i) => Enumerable.Repeat(i, o.SamplesPerProblem)).ToList();
        var correct = new int[problems.Count];
        double rewardSum = 0;
        long tokens = 0;
        var sampling = new SamplingOptions
        {
            Temperature = o.Temperature,
            MaxNewTokens = task.MaxResponseTokens,
            StopTokens = [.. task.Tokenizer.EosTokenIds],
            PadToken = task.Tokenizer.PaddingId(),
        };
        var sw = Stopwatch.StartNew();
        using var gen = new Generator(o.Seed, model.Device);
        for (int start = 0; start < jobs.Count; start += o.BatchSize)
        {
            using var scope = NewDisposeScope();
            var batch = jobs.Skip(start).Take(o.BatchSize).ToList();
            // A multi-turn environment rolls out and scores its own episodes (pass@1 = its reward, e.g. exact match).
            var env = task as IRolloutEnvironment;
            var rolled = env?.Rollout(model, batch.Select(i => problems[i]).ToList(), o.Temperature, 0, gen);
            using var result = rolled?.Generation ?? Sampler.Generate(model, batch.Select(i => task.EncodePrompt(problems[i])).ToList(), sampling, gen);
            for (int j = 0; j < batch.Count; j++)
            {
                double r = rolled?.Rewards[j] ?? task.Reward(problems[batch[j]], result.ResponseTokens[j]);
                rewardSum += r;
                tokens += result.ResponseTokens[j].Length;
                if (r >= 1.0) correct[batch[j]]++;
            }
        }
        sw.Stop();
        var pass = o.Ks.Distinct().Order().ToDictionary(k => k, k => PassAtK.Mean(correct, o.SamplesPerProblem, k));
        return new EvalResult(pass, correct, o.SamplesPerProblem, rewardSum / Math.Max(1, jobs.Count), tokens, sw.Elapsed.TotalSeconds);
    }
}

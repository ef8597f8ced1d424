using System.Diagnostics;
using EmaPg.Common;
using EmaPg.Model.HuggingFace;
using EmaPg.Rollout;
using EmaPg.Sampling;
using static TorchSharp.torch;

namespace EmaPg.Bench;

public sealed record RolloutBenchOptions
{
    /// <summary>Base URLs of running servers (emapg serve, vLLM, SGLang); the first alone is compared with all of them.</summary>
    public required IReadOnlyList<Uri> Servers { get; init; }
    /// <summary>Model folder written to the servers before each rollout (as the trainer does).</summary>
    public required string Model { get; init; }
    public int Prompts { get; init; } = 32;
    public int N { get; init; } = 8;
    public int MaxTokens { get; init; } = 32;
    public int Concurrency { get; init; } = 4;
    public int Reps { get; init; } = 3;
    public RolloutApi Api { get; init; } = RolloutApi.OpenAi;
}

/// <param name="TokensPerSecond">per rep, sampled tokens ÷ rollout seconds (the weight sync before each rollout excluded)</param>
public sealed record RolloutBenchRow(int Servers, IReadOnlyList<double> TokensPerSecond, double TokensPerSecondMedian, double SyncSecondsMedian);

public sealed record RolloutBenchReport(string Benchmark, string Date, string Model, int Prompts, int N, int MaxTokens, int Concurrency,
    IReadOnlyList<RolloutBenchRow> Rows, double? SpeedupAllOverOne, int ProcessorCount, string Os, string TorchSharp);

/// <summary>
/// `emapg bench rollout`: rollout throughput of the HTTP rollout engine on the first server alone and on all the servers
/// given, with the trainer's request pattern (token-id prompts, n samples each, logprobs), no stop tokens so every sample
/// has max_tokens tokens. Each rep first syncs the weights (write the folder, reload, wait for the version), as an
/// iteration does; that time is reported apart.
/// </summary>
public static class RolloutBench
{
    public static RolloutBenchReport Run(RolloutBenchOptions o, Action<string>? progress = null)
    {
        Check.Range("--prompts", o.Prompts, 1, 1 << 16);
        Check.Range("--n", o.N, 1, 1024);
        Check.Range("--max-tokens", o.MaxTokens, 1, 1 << 16);
        Check.Range("--reps", o.Reps, 1, 100);
        if (o.Servers.Count == 0) throw new UserError("--servers must name at least one URL.");
        using var hf = HfCheckpoint.Load(o.Model, ScalarType.Float32);
        var rng = new Random(0);
        int vocab = hf.Model.Config.VocabSize;
        var prompts = Enumerable.Range(0, o.Prompts).SelectMany(_ =>
        {
            var p = Enumerable.Range(0, 8).Select(_ => rng.Next(vocab)).ToArray();
            return Enumerable.Repeat(p, o.N);
        }).ToList();
        var options = new SamplingOptions { MaxNewTokens = o.MaxTokens, ReturnTopK = 1 };
        var weights = Path.Combine(Path.GetTempPath(), "emapg-bench-rollout-" + Guid.NewGuid().ToString("N"));
        var rows = new List<RolloutBenchRow>();
        try
        {
            var sets = o.Servers.Count > 1 ? new[] { o.Servers.Take(1).ToList(), o.Servers.ToList() } : [o.Servers.ToList()];
            foreach (var servers in sets)
            {
                using var engine = new HttpRolloutEngine(new HttpRolloutOptions { Servers = servers, WeightsDir = weights, Api = o.Api, Concurrency = o.Concurrency },
                    (m, folder) => HfCheckpoint.Save(m, hf.Config, folder, copyFilesFrom: hf.Directory));
                var tps = new List<double>();
                var syncs = new List<double>();
                for (int r = 0; r < o.Reps + 1; r++)
                {
                    var sw = Stopwatch.StartNew();
                    var output = engine.Generate(hf.Model, r + 1, prompts, options, 0);
                    double total = sw.Elapsed.TotalSeconds, sync = output.Metrics["rollout_sync_seconds"];
                    long tokens = output.Generation.ResponseTokens.Sum(t => (long)t.Length);
                    output.Generation.Dispose();
                    if (output.Metrics["rollout_server_failures"] > 0) throw new UserError("a server failed during the benchmark; the figures would mix server counts.");
                    // The first rollout warms each server up (first batch, allocator); it is not timed.
                    if (r == 0) continue;
                    tps.Add(tokens / Math.Max(1e-9, total - sync));
                    syncs.Add(sync);
                    progress?.Invoke($"{servers.Count} server(s), rep {r}/{o.Reps}: {tps[^1]:0} tokens/s (sync {sync:0.00} s)");
                }
                rows.Add(new RolloutBenchRow(servers.Count, tps, BenchStats.Median(tps), BenchStats.Median(syncs)));
            }
        }
        finally
        {
            if (Directory.Exists(weights)) Directory.Delete(weights, recursive: true);
        }
        return new RolloutBenchReport("rollout", BenchStats.UtcNow(), o.Model, o.Prompts, o.N, o.MaxTokens, o.Concurrency, rows,
            rows.Count > 1 ? BenchStats.Ratio(rows[1].TokensPerSecondMedian, rows[0].TokensPerSecondMedian) : null,
            Environment.ProcessorCount, BenchStats.Os, BenchStats.TorchSharpVersion);
    }
}

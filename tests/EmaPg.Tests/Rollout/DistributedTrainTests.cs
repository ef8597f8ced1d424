using System.Diagnostics;
using System.Text.Json.Nodes;
using EmaPg.Tests.Cli;
using EmaPg.Tests.Model.HuggingFace;
using EmaPg.Training;

namespace EmaPg.Tests.Rollout;

/// <summary>`emapg train` with rollouts on two `emapg serve` processes, one killed with SIGKILL during iteration 2.</summary>
public sealed class DistributedTrainTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "emapg-distributed-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Starts `emapg serve` on a free loopback port.</summary>
    internal static Process StartServe(string modelDir) => CliProcess.Start(null, "serve", "--model", modelDir, "--port", "0", "--threads", "1");

    /// <summary>The address a started `emapg serve` prints once it listens.</summary>
    internal static Uri WaitForAddress(Process p)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (DateTime.UtcNow < deadline)
        {
            var line = p.StandardOutput.ReadLineAsync();
            if (!line.Wait(deadline - DateTime.UtcNow) || line.Result is null) break;
            int at = line.Result.IndexOf("listening on ", StringComparison.Ordinal);
            if (at >= 0)
            {
                _ = p.StandardOutput.ReadToEndAsync();
                _ = p.StandardError.ReadToEndAsync();
                return new Uri(line.Result[(at + "listening on ".Length)..].Trim());
            }
        }
        p.Kill();
        throw new TimeoutException($"emapg serve did not start: {p.StandardError.ReadToEnd()}");
    }

    [Fact]
    public async Task Training_finishes_every_iteration_with_all_samples_when_a_server_is_killed_mid_run()
    {
        // Both start at once (each process takes seconds to load TorchSharp).
        var a = StartServe(HfFixtures.ModelDir("qwen2-tied"));
        var b = StartServe(HfFixtures.ModelDir("qwen2-tied"));
        try
        {
            var aUri = WaitForAddress(a);
            var bUri = WaitForAddress(b);
            var config = new TrainConfig
            {
                Seed = 1, Iterations = 3, HiddenSize = 16, IntermediateSize = 16, NumLayers = 1, NumHeads = 2, NumKvHeads = 1, VocabSize = 20,
                TaskMaxDigits = 1, SftSteps = 5, SftBatch = 8, PromptsPerIteration = 4, GroupSize = 4, MaxNewTokens = 6, KlTopK = 4,
                CheckpointEvery = 1, EvalEvery = 0, EvalProblems = 4, EvalSamples = 1, PassK = 1, StabilityMonitor = false, Threads = 1,
                RolloutServers = $"{aUri},{bUri}", RolloutConcurrency = 1, RolloutTimeout = 60,
            };
            // Kill server a as soon as it serves the weights of iteration 2: during that iteration's rollout.
            using var http = new HttpClient();
            var killer = Task.Run(async () =>
            {
                var deadline = DateTime.UtcNow.AddMinutes(3);
                while (DateTime.UtcNow < deadline)
                {
                    try
                    {
                        var v = JsonNode.Parse(await http.GetStringAsync(new Uri(aUri, "/get_weight_version")))!["weight_version"]!.GetValue<string>();
                        if (v.StartsWith("2.", StringComparison.Ordinal)) { a.Kill(); return true; }
                    }
                    catch (HttpRequestException) { }
                    await Task.Delay(10);
                }
                return false;
            });
            var run = Path.Combine(_dir, "run");
            var logs = new List<string>();
            var summary = TrainRun.Execute(config, run, TrainRun.StartMode.New, log: s => { lock (logs) logs.Add(s); }, cacheDir: Path.Combine(_dir, "cache"));
            Assert.True(await killer, "server a never served iteration 2's weights");
            Assert.Equal(3, summary.Iterations);
            var rows = MetricsLog.Read(run).ToList();
            Assert.Equal(3, rows.Count);
            Assert.All(rows, r => Assert.Equal(16, r["rollout_samples"]));
            Assert.All(rows, r => Assert.True(r["rollout_logp_gap"] < 1e-4, $"server/trainer log-prob gap {r["rollout_logp_gap"]}"));
            Assert.Equal(2, rows[0]["rollout_servers_alive"]);
            // Killed during iteration 2: left out at its sync or failed mid-rollout, and its requests went to b.
            Assert.True(rows[1]["rollout_server_failures"] >= 1 || rows[1]["rollout_servers_alive"] == 1, string.Join("\n", logs));
            Assert.Equal(1, rows[2]["rollout_servers_alive"]);
            Assert.Contains(logs, l => l.Contains(aUri.ToString().TrimEnd('/'), StringComparison.Ordinal));
        }
        finally
        {
            foreach (var p in new[] { a, b })
            {
                if (!p.HasExited) p.Kill();
                p.Dispose();
            }
        }
    }

    private TrainConfig Small(string servers) => new()
    {
        Seed = 2, Iterations = 3, HiddenSize = 16, IntermediateSize = 16, NumLayers = 1, NumHeads = 2, NumKvHeads = 1, VocabSize = 20,
        TaskMaxDigits = 1, SftSteps = 5, SftBatch = 8, PromptsPerIteration = 2, GroupSize = 2, MaxNewTokens = 4, KlTopK = 4,
        CheckpointEvery = 10, EvalEvery = 0, EvalProblems = 4, EvalSamples = 1, PassK = 1, StabilityMonitor = false, Threads = 1,
        RolloutServers = servers, RolloutTimeout = 60,
    };

    [Fact]
    public async Task With_every_server_gone_the_run_stops_with_a_checkpoint_and_resumes_on_new_servers()
    {
        string run = Path.Combine(_dir, "run"), cache = Path.Combine(_dir, "cache");
        var first = await EmaPg.Serving.ModelServer.StartAsync(new EmaPg.Serving.ServeOptions { ModelDir = HfFixtures.ModelDir("qwen2-tied"), Port = 0 });
        var config = Small(first.Address.ToString());
        // The only server goes away after iteration 1, which is not a checkpoint iteration (checkpoint_every = 10).
        var e = Assert.Throws<EmaPg.Rollout.RolloutServersUnavailableError>(() => TrainRun.Execute(config, run, TrainRun.StartMode.New,
            onIteration: r => { if (r.Iteration == 1) first.DisposeAsync().AsTask().GetAwaiter().GetResult(); }, cacheDir: cache));
        Assert.Contains("holds iteration 1", e.Message);
        Assert.Contains(first.Address.ToString(), e.Message);

        await using var second = await EmaPg.Serving.ModelServer.StartAsync(new EmaPg.Serving.ServeOptions { ModelDir = HfFixtures.ModelDir("qwen2-tied"), Port = 0 });
        var summary = TrainRun.Execute(config with { RolloutServers = second.Address.ToString() }, run, TrainRun.StartMode.Resume, cacheDir: cache);
        Assert.Equal(3, summary.Iterations);
        Assert.Equal([1, 2, 3], MetricsLog.Read(run).Select(r => (int)r["iteration"]));

        // Nothing finished: the message says to start again.
        var none = Assert.Throws<EmaPg.Rollout.RolloutServersUnavailableError>(() => TrainRun.Execute(Small("http://127.0.0.1:1"), Path.Combine(_dir, "none"), TrainRun.StartMode.New, cacheDir: cache));
        Assert.Contains("--restart", none.Message);
    }
}

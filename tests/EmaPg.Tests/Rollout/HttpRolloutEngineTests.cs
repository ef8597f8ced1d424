using EmaPg.Model.HuggingFace;
using EmaPg.Rollout;
using EmaPg.Sampling;
using EmaPg.Serving;
using EmaPg.Tests.Model.HuggingFace;
using static TorchSharp.torch;

namespace EmaPg.Tests.Rollout;

/// <summary>The HTTP rollout engine against in-process `emapg serve`s: weight sync, the GenerationResult it builds, and
/// a server that dies mid-rollout.</summary>
public sealed class HttpRolloutEngineTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "emapg-rollout-" + Guid.NewGuid().ToString("N"));
    private static readonly string Tiny = HfFixtures.ModelDir("qwen2-tied");

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private HttpRolloutEngine Engine(HfModel hf, params Uri[] servers) => new(
        new HttpRolloutOptions { Servers = servers, WeightsDir = _dir, Concurrency = 1, Timeout = TimeSpan.FromMinutes(1) },
        (m, folder) => HfCheckpoint.Save(m, hf.Config, folder));

    private static readonly SamplingOptions Options = new() { Temperature = 1.0, MaxNewTokens = 5, StopTokens = [2], PadToken = 0, ReturnTopK = 3 };

    private static List<int[]> Prompts() => [.. Enumerable.Range(0, 4).SelectMany(i => Enumerable.Repeat(new[] { 1, 20 + i, 30 + i }, 3))];

    [Fact]
    public async Task Samples_carry_the_synced_version_and_the_trainer_scores_them_the_same()
    {
        using var hf = HfCheckpoint.Load(Tiny, ScalarType.Float32);
        // The server starts from another model: the sync must make it serve the policy's weights.
        await using var server = await ModelServer.StartAsync(new ServeOptions { ModelDir = HfFixtures.ModelDir("qwen2-untied-bf16"), Port = 0 });
        using var engine = Engine(hf, server.Address);
        var prompts = Prompts();
        var output = engine.Generate(hf.Model, 1, prompts, Options, seed: 0);
        using var gen = output.Generation;
        Assert.Equal(12, gen.Batch);
        Assert.Equal([12, 3], gen.PromptIds.shape);
        Assert.Equal([12, gen.ResponseLength, 3], gen.TopKIndices!.shape);
        Assert.All(gen.WeightVersions!, v => Assert.Equal("1.1", v));
        Assert.Equal(12, output.Metrics["rollout_samples"]);
        Assert.Equal(0, output.Metrics["rollout_server_failures"]);
        for (int i = 0; i < 12; i++)
        {
            Assert.Equal(gen.ResponseTokens[i].Length, (int)gen.ResponseMask[i].sum().item<float>());
            Assert.Equal(gen.Stopped[i], gen.ResponseTokens[i][^1] == 2);
        }
        using (no_grad())
        {
            var score = Scorer.Score(hf.Model, gen, topK: 3);
            var gap = ((score.LogProbs - gen.LogProbs).abs() * gen.ResponseMask).max().item<float>();
            Assert.True(gap < 1e-4f, $"server and trainer log-probs differ by {gap}");
            // q = the server's top-k of the same distribution.
            var same = (score.TopKIndices!.eq(gen.TopKIndices!).all(-1).to_type(ScalarType.Float32) * gen.ResponseMask).sum().item<float>();
            Assert.Equal(gen.ResponseMask.sum().item<float>(), same);
        }
        // A second rollout syncs again: a fresh folder and version, the old folder removed.
        using var second = engine.Generate(hf.Model, 2, prompts, Options, seed: 0).Generation;
        Assert.All(second.WeightVersions!, v => Assert.Equal("2.2", v));
        Assert.Equal(["v2"], Directory.GetDirectories(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_server_that_dies_mid_rollout_has_its_requests_served_by_the_other()
    {
        using var hf = HfCheckpoint.Load(Tiny, ScalarType.Float32);
        var a = await ModelServer.StartAsync(new ServeOptions { ModelDir = Tiny, Port = 0 });
        await using var b = await ModelServer.StartAsync(new ServeOptions { ModelDir = Tiny, Port = 0 });
        using var engine = Engine(hf, a.Address, b.Address);
        bool stopped = false;
        engine.AfterRequest = uri =>
        {
            if (uri != a.Address || stopped) return;
            stopped = true;
            a.DisposeAsync().AsTask().GetAwaiter().GetResult();
        };
        var output = engine.Generate(hf.Model, 1, Prompts(), Options, seed: 0);
        using var gen = output.Generation;
        Assert.True(stopped);
        Assert.Equal(12, gen.Batch);
        Assert.All(gen.ResponseTokens, t => Assert.NotEmpty(t));
        // Whether the dead server is handed another request (and so counted as failed) depends on which worker reaches the
        // queue first while it shuts down, so the failure count is not asserted here; the process test kills mid-request.
        // Each prompt's group holds its own 3 samples: rows are filled once, by the request that succeeded.
        Assert.Equal(Prompts().Select(p => string.Join(',', p)), Enumerable.Range(0, 12).Select(i =>
            string.Join(',', gen.PromptIds[i].data<long>().ToArray().Select(x => (int)x))));
    }

    [Fact]
    public async Task A_request_the_server_refuses_stops_the_rollout_with_the_reason()
    {
        using var hf = HfCheckpoint.Load(Tiny, ScalarType.Float32);
        await using var server = await ModelServer.StartAsync(new ServeOptions { ModelDir = Tiny, Port = 0, MaxLogprobs = 2 });
        using var engine = Engine(hf, server.Address);
        var e = Assert.Throws<EmaPg.Common.UserError>(() => engine.Generate(hf.Model, 1, Prompts(), Options, seed: 0));
        Assert.Contains("--max-logprobs", e.Message);
        Assert.Contains("logprobs", e.Message);
    }

    /// <summary>Answers like a vLLM server started with the default --max-logprobs 20, from the fixtures of its responses.</summary>
    private sealed class VllmFixtureServer : HttpMessageHandler
    {
        public List<string> Paths { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            string path = request.RequestUri!.AbsolutePath;
            lock (Paths) Paths.Add(path);
            var (status, file) = path switch
            {
                "/collective_rpc" => (200, "vllm-collective-rpc-reload-weights.json"),
                "/v1/models" => (200, "vllm-models.json"),
                "/v1/completions" => (400, "vllm-error-max-logprobs.json"),
                _ => (404, null as string),
            };
            var body = file is null ? "" : File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "serving", file));
            return Task.FromResult(new HttpResponseMessage((System.Net.HttpStatusCode)status) { Content = new StringContent(body) });
        }
    }

    [Fact]
    public void A_vLLM_server_whose_max_logprobs_is_below_kl_topk_stops_the_run_naming_both()
    {
        using var hf = HfCheckpoint.Load(Tiny, ScalarType.Float32);
        var server = new VllmFixtureServer();
        using var engine = new HttpRolloutEngine(
            new HttpRolloutOptions { Servers = [new Uri("http://gpu1:8000")], WeightsDir = Path.Combine(_dir, "policy"), Reload = ReloadApi.CollectiveRpc, Concurrency = 1 },
            (m, folder) => HfCheckpoint.Save(m, hf.Config, folder), log: null, handler: server);
        var e = Assert.Throws<EmaPg.Common.UserError>(() => engine.Generate(hf.Model, 1, Prompts(), Options with { ReturnTopK = 32 }, seed: 0));
        Assert.Contains("max allowed: 20", e.Message);   // the server's limit, in vLLM's words
        Assert.Contains("kl_topk = 32", e.Message);      // the run's setting
        Assert.Contains("--max-logprobs ≥ 32", e.Message);
        // The reload ({"results": [null]}) and the model list were read before the first request was refused.
        Assert.Equal(["/collective_rpc", "/v1/models", "/v1/completions"], server.Paths);
    }

    [Fact]
    public void No_server_left_is_a_user_error_naming_them()
    {
        using var hf = HfCheckpoint.Load(Tiny, ScalarType.Float32);
        var dead = new Uri("http://127.0.0.1:1");
        using var engine = Engine(hf, dead);
        var e = Assert.Throws<RolloutServersUnavailableError>(() => engine.Generate(hf.Model, 1, Prompts(), Options, seed: 0));
        Assert.Contains("127.0.0.1:1", e.Message);
        Assert.IsAssignableFrom<EmaPg.Common.UserError>(e);
    }

    [Fact]
    public void Server_lists_are_checked()
    {
        Assert.Equal([new Uri("http://127.0.0.1:8000"), new Uri("http://h:9")], HttpRolloutOptions.ParseServers("http://127.0.0.1:8000/v1, http://h:9"));
        Assert.Contains("not an http(s) URL", Assert.Throws<EmaPg.Common.UserError>(() => HttpRolloutOptions.ParseServers("localhost:8000")).Message);
    }
}

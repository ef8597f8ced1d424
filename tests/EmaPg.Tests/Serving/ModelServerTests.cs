using System.Net.Http.Json;
using System.Text.Json.Nodes;
using EmaPg.Model.HuggingFace;
using EmaPg.Sampling;
using EmaPg.Serving;
using EmaPg.Tests.Model.HuggingFace;
using static TorchSharp.torch;

namespace EmaPg.Tests.Serving;

/// <summary>`emapg serve` in-process on a loopback port, called over HTTP: response shapes, log-probs equal to the
/// scorer's (float32), seeds, batching across clients, reloads and OpenAI-style errors.</summary>
public sealed class ModelServerTests : IAsyncLifetime
{
    private static readonly string Tiny = HfFixtures.ModelDir("qwen2-tied");   // vocab 256, eos 2, no tokenizer
    private ModelServer _server = null!;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromMinutes(2) };

    public async Task InitializeAsync() => _server = await ModelServer.StartAsync(new ServeOptions { ModelDir = Tiny, Port = 0, ServedModelName = "tiny" });

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
    }

    private async Task<(int Status, JsonObject Body)> Post(string path, object body)
    {
        using var r = await _http.PostAsync(new Uri(_server.Address, path), body is string s ? new StringContent(s) : JsonContent.Create(body));
        return ((int)r.StatusCode, JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject());
    }

    /// <summary>log π(token | prefix) of every token of the full sequence (positions ≥ 1), from the scorer in float32.</summary>
    private static float[][] Scores(string dir, int[] ids)
    {
        using var m = HfCheckpoint.Load(dir, ScalarType.Float32);
        return [.. ModelQueries.TopLogProbs(m.Model, ids, m.Model.Config.VocabSize).Select(p =>
        {
            var row = new float[p.TopIds.Count];
            for (int i = 0; i < row.Length; i++) row[p.TopIds[i]] = p.TopLogprobs[i];
            return row;
        })];
    }

    [Fact]
    public async Task Completions_with_token_ids_return_vLLM_logprobs_equal_to_the_scorer()
    {
        int[] prompt = [1, 17, 42, 99, 7];
        var (status, body) = await Post("/v1/completions", new { model = "tiny", prompt, n = 2, max_tokens = 6, temperature = 1.0, seed = 11, logprobs = 3, return_tokens_as_token_ids = true });
        Assert.Equal(200, status);
        Assert.Equal("text_completion", (string)body["object"]!);
        Assert.Equal("tiny", (string)body["model"]!);
        Assert.Equal("0", (string)body["weight_version"]!);
        var choices = body["choices"]!.AsArray();
        Assert.Equal(2, choices.Count);
        int completion = 0;
        for (int c = 0; c < 2; c++)
        {
            var ch = choices[c]!;
            Assert.Equal(c, (int)ch["index"]!);
            var lp = ch["logprobs"]!;
            var tokens = lp["tokens"]!.AsArray().Select(t => (string)t!).ToArray();
            Assert.All(tokens, t => Assert.StartsWith("token_id:", t));
            var ids = tokens.Select(t => int.Parse(t["token_id:".Length..])).ToArray();
            completion += ids.Length;
            bool stopped = ids[^1] == 2;
            Assert.Equal(stopped ? "stop" : "length", (string)ch["finish_reason"]!);
            Assert.Equal(stopped ? ids.Length : 6, ids.Length);
            var tokenLp = lp["token_logprobs"]!.AsArray().Select(v => (float)v!).ToArray();
            var tops = lp["top_logprobs"]!.AsArray();
            Assert.Equal(ids.Length, tokenLp.Length);
            Assert.Equal(ids.Length, tops.Count);
            Assert.Equal(ids.Length, lp["text_offset"]!.AsArray().Count);
            var score = Scores(Tiny, [.. prompt, .. ids]);
            for (int j = 0; j < ids.Length; j++)
            {
                var expected = score[prompt.Length - 1 + j];
                Assert.Equal(expected[ids[j]], tokenLp[j], 1e-4f);
                var top = tops[j]!.AsObject();
                // The 3 most likely tokens, plus the sampled one when it is not among them (vLLM's shape).
                var best = Enumerable.Range(0, expected.Length).OrderByDescending(i => expected[i]).Take(3).ToArray();
                Assert.Equal(best.Contains(ids[j]) ? 3 : 4, top.Count);
                foreach (var id in best) Assert.Equal(expected[id], (float)top[$"token_id:{id}"]!, 1e-4f);
                Assert.Equal(tokenLp[j], (float)top[$"token_id:{ids[j]}"]!);
            }
        }
        Assert.Equal(prompt.Length, (int)body["usage"]!["prompt_tokens"]!);
        Assert.Equal(completion, (int)body["usage"]!["completion_tokens"]!);

        // The same seed gives the same samples.
        var (_, again) = await Post("/v1/completions", new { prompt, n = 2, max_tokens = 6, seed = 11, logprobs = 3, return_tokens_as_token_ids = true });
        Assert.Equal(choices.ToJsonString(), again["choices"]!.ToJsonString());
    }

    [Fact]
    public async Task Greedy_completion_follows_the_scorer_argmax_and_stops_at_a_requested_stop_token()
    {
        int[] prompt = [1, 5, 6, 7];
        var (_, body) = await Post("/v1/completions", new { prompt, max_tokens = 5, temperature = 0, logprobs = 0, return_tokens_as_token_ids = true, ignore_eos = true });
        var ids = body["choices"]![0]!["logprobs"]!["tokens"]!.AsArray().Select(t => int.Parse(((string)t!)["token_id:".Length..])).ToArray();
        Assert.Equal(5, ids.Length);
        var score = Scores(Tiny, [.. prompt, .. ids]);
        for (int j = 0; j < ids.Length; j++)
        {
            var row = score[prompt.Length - 1 + j];
            Assert.Equal(Array.IndexOf(row, row.Max()), ids[j]);
        }
        // Asking to stop at the second greedy token ends the completion there, with vLLM's stop_reason.
        var (_, cut) = await Post("/v1/completions", new { prompt, max_tokens = 5, temperature = 0, stop_token_ids = new[] { ids[1] }, logprobs = 0, return_tokens_as_token_ids = true, ignore_eos = true });
        var ch = cut["choices"]![0]!;
        Assert.Equal(2, ch["logprobs"]!["tokens"]!.AsArray().Count);
        Assert.Equal("stop", (string)ch["finish_reason"]!);
        Assert.Equal(ids[1], (int)ch["stop_reason"]!);
    }

    [Fact]
    public async Task Concurrent_clients_are_batched()
    {
        var tasks = Enumerable.Range(0, 8).Select(i => Post("/v1/completions", new { prompt = new[] { 1, 10 + i }, max_tokens = 24, ignore_eos = true, logprobs = 1, return_tokens_as_token_ids = true })).ToList();
        var results = await Task.WhenAll(tasks);
        Assert.All(results, r => Assert.Equal(200, r.Status));
        Assert.All(results, r => Assert.Equal(24, r.Body["choices"]![0]!["logprobs"]!["tokens"]!.AsArray().Count));
        Assert.True(_server.BatchesRun < 8, $"8 concurrent requests ran in {_server.BatchesRun} batches");
    }

    [Theory]
    [InlineData("{not json", null)]
    [InlineData("""{"prompt": [1, 2], "n": 0}""", "n")]
    [InlineData("""{"prompt": [1, 256]}""", "prompt")]
    [InlineData("""{"prompt": [1, 2], "logprobs": 21}""", "logprobs")]
    [InlineData("""{"prompt": [1, 2], "max_tokens": 600}""", "max_tokens")]
    [InlineData("""{"prompt": [1, 2], "temperature": "hot"}""", "temperature")]
    [InlineData("""{"prompt": "text needs a tokenizer"}""", "prompt")]
    [InlineData("""{"prompt": []}""", "prompt")]
    [InlineData("""{"prompt": [1, 2], "stream": true}""", "stream")]
    public async Task Bad_completion_requests_get_400_with_OpenAI_error_shape(string body, string? param)
    {
        var (status, json) = await Post("/v1/completions", body);
        Assert.Equal(400, status);
        var e = json["error"]!.AsObject();
        Assert.False(string.IsNullOrEmpty((string)e["message"]!));
        Assert.Equal("BadRequestError", (string)e["type"]!);
        Assert.Equal(param, (string?)e["param"]);
        Assert.Equal(400, (int)e["code"]!);
    }

    [Fact]
    public async Task Unknown_model_is_404_and_chat_without_tokenizer_is_400()
    {
        var (status, json) = await Post("/v1/completions", new { model = "gpt-4", prompt = new[] { 1 } });
        Assert.Equal(404, status);
        Assert.Equal("model", (string)json["error"]!["param"]!);
        (status, json) = await Post("/v1/chat/completions", new { messages = new[] { new { role = "user", content = "hi" } } });
        Assert.Equal(400, status);
        Assert.Contains("no tokenizer", (string)json["error"]!["message"]!);
        using var r = await _http.GetAsync(new Uri(_server.Address, "/v1/models"));
        var models = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
        Assert.Equal("tiny", (string)models["data"]![0]!["id"]!);
    }

    [Fact]
    public async Task Reload_serves_the_new_folder_under_the_new_version()
    {
        string other = HfFixtures.ModelDir("qwen2-untied-bf16");
        var (status, json) = await Post("/update_weights_from_disk", new { model_path = other, weight_version = "v7" });
        Assert.Equal(200, status);
        Assert.True((bool)json["success"]!);
        using (var r = await _http.GetAsync(new Uri(_server.Address, "/get_weight_version")))
            Assert.Equal("v7", (string)JsonNode.Parse(await r.Content.ReadAsStringAsync())!["weight_version"]!);
        int[] prompt = [1, 3, 4];
        var (_, body) = await Post("/v1/completions", new { prompt, max_tokens = 3, logprobs = 1, return_tokens_as_token_ids = true, ignore_eos = true });
        Assert.Equal("v7", (string)body["weight_version"]!);
        var ch = body["choices"]![0]!["logprobs"]!;
        var ids = ch["tokens"]!.AsArray().Select(t => int.Parse(((string)t!)["token_id:".Length..])).ToArray();
        var score = Scores(other, [.. prompt, .. ids]);
        for (int j = 0; j < ids.Length; j++) Assert.Equal(score[prompt.Length - 1 + j][ids[j]], (float)ch["token_logprobs"]![j]!, 1e-4f);

        // vLLM's collective_rpc reload_weights re-reads the folder now served, as the next version.
        (status, json) = await Post("/collective_rpc", new { method = "reload_weights" });
        Assert.Equal(200, status);
        Assert.Equal("2", (string)json["results"]![0]!["weight_version"]!);
        (status, json) = await Post("/update_weights_from_disk", new { model_path = "/nonexistent/folder" });
        Assert.Equal(400, status);
        Assert.False((bool)json["success"]!);
        (status, json) = await Post("/collective_rpc", new { method = "sleep" });
        Assert.Equal(400, status);
        Assert.Equal("method", (string)json["error"]!["param"]!);
    }
}

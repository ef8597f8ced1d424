using System.Net.Http.Json;
using System.Text.Json.Nodes;
using EmaPg.Model.HuggingFace;
using EmaPg.Sampling;
using EmaPg.Serving;
using EmaPg.Tokenization;
using EmaPg.Tests.Tokenization;
using static TorchSharp.torch;

namespace EmaPg.Tests.Serving;

/// <summary>/v1/chat/completions on a 2-layer, 64-wide Qwen3 with the real Qwen3 tokenizer and chat template.</summary>
public sealed class ChatCompletionsTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "emapg-serve-chat-" + Guid.NewGuid().ToString("N"));
    private ModelServer _server = null!;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromMinutes(2) };

    public async Task InitializeAsync()
    {
        HfCheckpoint.Init(new ModelInitOptions
        {
            Like = "qwen3-0.6b", TokenizerDir = TokenizerFixtures.ModelDir("qwen3"), OutDir = _dir, DType = "f32", Seed = 3,
            Set = ["num_hidden_layers=1", "hidden_size=32", "intermediate_size=64", "num_attention_heads=2", "num_key_value_heads=1", "head_dim=16"],
        });
        _server = await ModelServer.StartAsync(new ServeOptions { ModelDir = _dir, Port = 0 });
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Chat_logprobs_have_vLLM_shape_and_equal_the_scorer_on_the_templated_prompt()
    {
        var messages = new[] { new { role = "user", content = "What is 2+2?" } };
        using var r = await _http.PostAsync(new Uri(_server.Address, "/v1/chat/completions"), JsonContent.Create(new
        {
            messages, max_tokens = 4, temperature = 1.0, seed = 5, logprobs = true, top_logprobs = 2, return_tokens_as_token_ids = true,
        }));
        Assert.Equal(200, (int)r.StatusCode);
        var body = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
        Assert.Equal("chat.completion", (string)body["object"]!);
        var choice = body["choices"]![0]!;
        Assert.Equal("assistant", (string)choice["message"]!["role"]!);
        var content = choice["logprobs"]!["content"]!.AsArray();
        Assert.InRange(content.Count, 1, 4);
        var ids = content.Select(c => int.Parse(((string)c!["token"]!)["token_id:".Length..])).ToArray();

        using var tok = HfTokenizer.Load(_dir);
        var prompt = tok.Encode(tok.ChatTemplate!.Render([new ChatMessage("user", "What is 2+2?")], addGenerationPrompt: true));
        Assert.Equal(prompt.Length, (int)body["usage"]!["prompt_tokens"]!);
        Assert.Equal(tok.Decode(ids, skipSpecialTokens: true), (string)choice["message"]!["content"]!);
        using var m = HfCheckpoint.Load(_dir, ScalarType.Float32);
        var seq = prompt.Concat(ids).ToArray();
        var score = ModelQueries.TopLogProbs(m.Model, seq, 2);
        float[] sampled;
        using (no_grad())
        {
            // The sampled tokens' log-probs from one full forward (float32 log-softmax over the whole vocabulary).
            var logp = m.Model.Forward(tensor(seq.Select(x => (long)x).ToArray()).unsqueeze(0)).squeeze(0).log_softmax(-1);
            sampled = [.. ids.Select((id, j) => logp[prompt.Length - 1 + j, id].item<float>())];
        }
        for (int j = 0; j < ids.Length; j++)
        {
            var entry = content[j]!;
            var top = entry["top_logprobs"]!.AsArray();
            var expected = score[prompt.Length - 1 + j];
            Assert.Equal(2, top.Count);
            for (int c = 0; c < 2; c++)
            {
                Assert.Equal($"token_id:{expected.TopIds[c]}", (string)top[c]!["token"]!);
                Assert.Equal(expected.TopLogprobs[c], (float)top[c]!["logprob"]!, 1e-4f);
                Assert.Equal(System.Text.Encoding.UTF8.GetBytes($"token_id:{expected.TopIds[c]}").Length, top[c]!["bytes"]!.AsArray().Count);
            }
            Assert.Equal(sampled[j], (float)entry["logprob"]!, 1e-4f);
        }
    }

    [Fact]
    public async Task Top_logprobs_without_logprobs_is_a_400()
    {
        using var r = await _http.PostAsync(new Uri(_server.Address, "/v1/chat/completions"), JsonContent.Create(new
        {
            messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 2, top_logprobs = 2,
        }));
        Assert.Equal(400, (int)r.StatusCode);
        var e = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("top_logprobs", (string)e["param"]!);
    }
}

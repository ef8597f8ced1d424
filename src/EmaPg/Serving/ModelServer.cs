using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using EmaPg.Common;
using EmaPg.Tokenization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EmaPg.Serving;

/// <summary>What <c>emapg serve</c> serves and how.</summary>
public sealed record ServeOptions
{
    /// <summary>Hugging Face model folder (loaded in float32).</summary>
    public required string ModelDir { get; init; }
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 = any free port (see <see cref="ModelServer.Address"/>).</summary>
    public int Port { get; init; } = 8000;
    /// <summary>The model id of /v1/models and the only accepted "model"; null = the folder's name.</summary>
    public string? ServedModelName { get; init; }
    /// <summary>Largest logprobs / top_logprobs a request may ask for (vLLM's --max-logprobs).</summary>
    public int MaxLogprobs { get; init; } = 20;
    /// <summary>Most sequences sampled in one batch.</summary>
    public int MaxBatchRows { get; init; } = 256;
    /// <summary>Seed of the generator of unseeded requests.</summary>
    public long Seed { get; init; }
    /// <summary>Weight version reported before the first reload.</summary>
    public string WeightVersion { get; init; } = "0";

    public ServeOptions Validated()
    {
        if (!Directory.Exists(ModelDir)) throw new UserError($"--model: directory '{ModelDir}' does not exist.");
        Check.Range("--port", Port, 0, 65535);
        Check.Range("--max-logprobs", MaxLogprobs, 0, 1 << 20);
        Check.Range("--max-batch", MaxBatchRows, 1, 1 << 20);
        if (Host != "localhost" && !IPAddress.TryParse(Host, out _)) throw new UserError($"--host must be an IP address or localhost, got '{Host}'.");
        return this;
    }
}

/// <summary>
/// An OpenAI-compatible HTTP server over a model folder (ASP.NET Core minimal APIs): <c>/v1/models</c>,
/// <c>/v1/completions</c> (text or token-id prompts, n, max_tokens, temperature, top_p, top_k, seed, stop, stop_token_ids,
/// logprobs with vLLM's <c>return_tokens_as_token_ids</c>), <c>/v1/chat/completions</c> (the folder's chat template,
/// logprobs / top_logprobs), and weight reloads in SGLang's (<c>/update_weights_from_disk</c>, <c>/get_weight_version</c>)
/// and vLLM's (<c>/collective_rpc</c> reload_weights) shapes. Log-probs are those of the distribution sampled from
/// (vLLM's <c>--logprobs-mode processed_logprobs</c>): at temperature 1 without top-p/top-k, the model's own.
/// Requests of all clients are batched by one generation loop (<see cref="BatchingEngine"/>).
/// </summary>
public sealed class ModelServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly BatchingEngine _engine;
    private readonly ServeOptions _o;
    private readonly string _name;

    private ModelServer(WebApplication app, BatchingEngine engine, ServeOptions o, string name)
    {
        _app = app;
        _engine = engine;
        _o = o;
        _name = name;
    }

    /// <summary>The address the server listens on, e.g. http://127.0.0.1:8000.</summary>
    public Uri Address { get; private set; } = new("http://127.0.0.1");
    public string ModelName => _name;
    /// <summary>Batched generations run so far (fewer than the requests when clients were batched together).</summary>
    internal int BatchesRun => _engine.BatchesRun;

    public static async Task<ModelServer> StartAsync(ServeOptions options)
    {
        var o = options.Validated();
        var model = ServedModel.Load(o.ModelDir, o.WeightVersion);
        var engine = new BatchingEngine(model, o.MaxBatchRows, o.Seed);
        try
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            var ip = o.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(o.Host);
            builder.WebHost.ConfigureKestrel(k => k.Listen(ip, o.Port));
            var app = builder.Build();
            string name = o.ServedModelName ?? Path.GetFileName(Path.GetFullPath(o.ModelDir).TrimEnd('/'));
            var server = new ModelServer(app, engine, o, name);
            server.Map(app);
            try { await app.StartAsync(); }
            catch (IOException e) { throw new UserError($"cannot listen on {o.Host}:{o.Port}: {e.Message}"); }
            var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            server.Address = new Uri(bound);
            return server;
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    public Task WaitForShutdownAsync(CancellationToken ct = default) => _app.WaitForShutdownAsync(ct);

    private void Map(WebApplication app)
    {
        app.MapGet("/health", () => Results.Ok());
        app.MapGet("/v1/models", ctx => Answer(ctx, Models));
        app.MapPost("/v1/completions", ctx => Answer(ctx, Completions));
        app.MapPost("/v1/chat/completions", ctx => Answer(ctx, Chat));
        app.MapGet("/get_weight_version", ctx => Answer(ctx, WeightVersion));
        app.MapPost("/update_weights_from_disk", UpdateWeightsFromDisk);
        app.MapPost("/collective_rpc", ctx => Answer(ctx, CollectiveRpc));
    }

    private static async Task Answer(HttpContext ctx, Func<HttpContext, Task<JsonNode>> handler)
    {
        int status = 200;
        JsonNode body;
        try { body = await handler(ctx); }
        catch (ApiError e) { status = e.Status; body = e.ToJson(); }
        catch (UserError e) { status = 400; body = new ApiError(400, e.Message).ToJson(); }
        catch (Exception e) { status = 500; body = new ApiError(500, $"{e.GetType().Name}: {e.Message}").ToJson(); }
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body.ToJsonString(), ctx.RequestAborted);
    }

    private Task<JsonNode> WeightVersion(HttpContext _) => Task.FromResult<JsonNode>(new JsonObject { ["weight_version"] = _engine.Model.Version });

    private Task<JsonNode> Models(HttpContext _) => Task.FromResult<JsonNode>(new JsonObject
    {
        ["object"] = "list",
        ["data"] = new JsonArray(new JsonObject
        {
            ["id"] = _name, ["object"] = "model", ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), ["owned_by"] = "emapg",
            ["root"] = _engine.Model.Directory, ["max_model_len"] = _engine.Model.MaxPositions,
        }),
    });

    private void CheckModel(RequestBody b)
    {
        var m = b.String("model");
        if (m is not null && m != _name) throw new ApiError(404, $"The model `{m}` does not exist; this server serves `{_name}`.", "model");
        if (b.Bool("stream") == true) throw new ApiError(400, "stream = true is not supported; ask without streaming.", "stream");
    }

    /// <summary>How to sample, shared by completions and chat.</summary>
    private sealed record Sampling(int N, int? MaxTokens, bool Greedy, double Temperature, double TopP, int TopK, long? Seed, string[] StopStrings, int[] StopIds, int[] RequestStopIds);

    private Sampling ReadSampling(RequestBody b, ServedModel m, string maxTokensField)
    {
        int n = b.Int("n", 1, 1024) ?? 1;
        int? maxTokens = b.Int(maxTokensField, 1, m.MaxPositions) ?? (maxTokensField == "max_completion_tokens" ? b.Int("max_tokens", 1, m.MaxPositions) : null);
        double temperature = b.Real("temperature", 0, 100) ?? 1.0;
        double topP = b.Real("top_p", 0, 1, minOpen: true) ?? 1.0;
        int topK = b.Int("top_k", -1, m.VocabSize) ?? -1;
        var stops = b.Strings("stop");
        if (stops.Length > 0 && m.Tokenizer is null) throw new ApiError(400, "'stop' strings need a tokenizer, and this model folder has none; use stop_token_ids.", "stop");
        if (stops.Any(s => s.Length == 0)) throw new ApiError(400, "'stop' strings must not be empty.", "stop");
        var requestStops = b.Ints("stop_token_ids", m.VocabSize);
        var eos = b.Bool("ignore_eos") == true ? [] : m.EosIds;
        var stopIds = eos.Concat(requestStops).Distinct().Order().ToArray();
        return new Sampling(n, maxTokens, temperature == 0, temperature == 0 ? 1.0 : temperature, topP, topK <= 0 ? 0 : topK, b.Long("seed"), stops, stopIds, requestStops);
    }

    private async Task<(JobResult Result, int MaxTokens)> Sample(ServedModel m, IReadOnlyList<int[]> prompts, Sampling s, int topK, CancellationToken ct)
    {
        int longest = prompts.Max(p => p.Length);
        int maxTokens = s.MaxTokens ?? Math.Max(1, m.MaxPositions - longest);
        if (longest + maxTokens > m.MaxPositions)
            throw new ApiError(400, $"This model's maximum context length is {m.MaxPositions} tokens; the prompt has {longest} and max_tokens is {maxTokens}.", "max_tokens");
        var rows = prompts.SelectMany(p => Enumerable.Repeat(p, s.N)).ToList();
        var job = new GenerationJob(rows, s.Greedy, s.Temperature, maxTokens, s.StopIds, topK, s.TopP, s.TopK, s.Seed);
        return (await _engine.Submit(job).WaitAsync(ct), maxTokens);
    }

    private async Task<JsonNode> Completions(HttpContext ctx)
    {
        var b = await RequestBody.ReadAsync(ctx.Request.Body, ctx.RequestAborted);
        CheckModel(b);
        var m = _engine.Model;
        if (b.Bool("echo") == true) throw new ApiError(400, "echo = true is not supported.", "echo");
        var prompts = Prompts(b, m);
        var s = ReadSampling(b, m, "max_tokens");
        int? logprobs = b.Int("logprobs", 0, _o.MaxLogprobs);
        bool asIds = b.Bool("return_tokens_as_token_ids") ?? false;
        var (result, _) = await Sample(m, prompts, s with { MaxTokens = s.MaxTokens ?? 16 }, logprobs ?? 0, ctx.RequestAborted);
        var choices = new JsonArray();
        int completionTokens = 0;
        for (int i = 0; i < result.Rows.Count; i++)
        {
            var (row, text, stopReason) = Finish(result.Rows[i], result.Model.Tokenizer, s);
            completionTokens += row.Tokens.Length;
            JsonNode? lp = null;
            if (logprobs is int k)
            {
                var toks = row.Tokens.Select(t => TokenString(result.Model.Tokenizer, t, asIds)).ToArray();
                var offsets = new JsonArray();
                int offset = 0;
                foreach (var t in toks) { offsets.Add(offset); offset += t.Length; }
                lp = new JsonObject
                {
                    ["text_offset"] = offsets,
                    ["token_logprobs"] = new JsonArray(row.LogProbs.Select(v => (JsonNode)v).ToArray()),
                    ["tokens"] = new JsonArray(toks.Select(t => (JsonNode)t).ToArray()),
                    ["top_logprobs"] = new JsonArray(Enumerable.Range(0, row.Tokens.Length).Select(j =>
                    {
                        // vLLM's shape: the k most likely tokens, plus the sampled one when it is not among them.
                        var d = new JsonObject();
                        for (int c = 0; c < k; c++) d[TokenString(result.Model.Tokenizer, row.TopIds[j][c], asIds)] = row.TopLogProbs[j][c];
                        d[toks[j]] = row.LogProbs[j];
                        return (JsonNode)d;
                    }).ToArray()),
                };
            }
            choices.Add(new JsonObject
            {
                ["index"] = i, ["text"] = text, ["logprobs"] = lp,
                ["finish_reason"] = row.Stopped || stopReason is not null ? "stop" : "length", ["stop_reason"] = stopReason?.DeepClone(),
            });
        }
        int promptTokens = prompts.Sum(p => p.Length);
        return new JsonObject
        {
            ["id"] = "cmpl-" + Guid.NewGuid().ToString("N"), ["object"] = "text_completion", ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["model"] = _name, ["choices"] = choices, ["weight_version"] = result.Model.Version,
            ["usage"] = new JsonObject { ["prompt_tokens"] = promptTokens, ["completion_tokens"] = completionTokens, ["total_tokens"] = promptTokens + completionTokens },
        };
    }

    private async Task<JsonNode> Chat(HttpContext ctx)
    {
        var b = await RequestBody.ReadAsync(ctx.Request.Body, ctx.RequestAborted);
        CheckModel(b);
        var m = _engine.Model;
        var tokenizer = m.Tokenizer ?? throw new ApiError(400, "this model folder has no tokenizer, so it cannot take chat messages; use /v1/completions with token ids.", "messages");
        var template = tokenizer.ChatTemplate ?? throw new ApiError(400, "this model's tokenizer has no chat template.", "messages");
        var prompt = tokenizer.Encode(template.Render(Messages(b), addGenerationPrompt: true), addSpecialTokens: false);
        var s = ReadSampling(b, m, "max_completion_tokens");
        bool logprobs = b.Bool("logprobs") ?? false;
        int? top = b.Int("top_logprobs", 0, _o.MaxLogprobs);
        if (top is not null && !logprobs) throw new ApiError(400, "top_logprobs needs logprobs = true.", "top_logprobs");
        bool asIds = b.Bool("return_tokens_as_token_ids") ?? false;
        var (result, _) = await Sample(m, [prompt], s, top ?? 0, ctx.RequestAborted);
        var choices = new JsonArray();
        int completionTokens = 0;
        for (int i = 0; i < result.Rows.Count; i++)
        {
            var (row, text, stopReason) = Finish(result.Rows[i], result.Model.Tokenizer, s);
            completionTokens += row.Tokens.Length;
            JsonNode? lp = null;
            if (logprobs)
            {
                JsonObject Entry(int id, float value) { var t = TokenString(result.Model.Tokenizer, id, asIds); return new JsonObject { ["token"] = t, ["logprob"] = value, ["bytes"] = new JsonArray(Encoding.UTF8.GetBytes(t).Select(x => (JsonNode)(int)x).ToArray()) }; }
                lp = new JsonObject
                {
                    ["content"] = new JsonArray(Enumerable.Range(0, row.Tokens.Length).Select(j =>
                    {
                        var e = Entry(row.Tokens[j], row.LogProbs[j]);
                        e["top_logprobs"] = new JsonArray(Enumerable.Range(0, top ?? 0).Select(c => (JsonNode)Entry(row.TopIds[j][c], row.TopLogProbs[j][c])).ToArray());
                        return (JsonNode)e;
                    }).ToArray()),
                };
            }
            choices.Add(new JsonObject
            {
                ["index"] = i, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text }, ["logprobs"] = lp,
                ["finish_reason"] = row.Stopped || stopReason is not null ? "stop" : "length", ["stop_reason"] = stopReason?.DeepClone(),
            });
        }
        return new JsonObject
        {
            ["id"] = "chatcmpl-" + Guid.NewGuid().ToString("N"), ["object"] = "chat.completion", ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["model"] = _name, ["choices"] = choices, ["weight_version"] = result.Model.Version,
            ["usage"] = new JsonObject { ["prompt_tokens"] = prompt.Length, ["completion_tokens"] = completionTokens, ["total_tokens"] = prompt.Length + completionTokens },
        };
    }

    /// <summary>OpenAI's prompt: a string, a list of strings, a list of token ids, or a list of such lists.</summary>
    private static List<int[]> Prompts(RequestBody b, ServedModel m)
    {
        var node = b.Json["prompt"] ?? throw new ApiError(400, "'prompt' is required.", "prompt");
        int[] Text(string s)
        {
            var tok = m.Tokenizer ?? throw new ApiError(400, "this model folder has no tokenizer; give the prompt as token ids.", "prompt");
            var ids = tok.Encode(s, addSpecialTokens: true);
            return ids.Length > 0 ? ids : throw new ApiError(400, "the prompt is empty.", "prompt");
        }
        List<int[]> prompts = node switch
        {
            JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.String => [Text(v.GetValue<string>())],
            JsonArray a when a.Count > 0 && a.All(e => e?.GetValueKind() == System.Text.Json.JsonValueKind.Number) => [RequestBody.TokenIds(a, "prompt", m.VocabSize)],
            JsonArray a when a.Count > 0 && a.All(e => e?.GetValueKind() == System.Text.Json.JsonValueKind.String) => [.. a.Select(e => Text(e!.GetValue<string>()))],
            JsonArray a when a.Count > 0 && a.All(e => e is JsonArray inner && inner.Count > 0) => [.. a.Select(e => RequestBody.TokenIds((JsonArray)e!, "prompt", m.VocabSize))],
            _ => throw new ApiError(400, "'prompt' must be a non-empty string, list of strings, list of token ids, or list of non-empty token-id lists.", "prompt"),
        };
        return prompts;
    }

    private static List<ChatMessage> Messages(RequestBody b)
    {
        if (b.Json["messages"] is not JsonArray a || a.Count == 0) throw new ApiError(400, "'messages' must be a non-empty list of {\"role\", \"content\"} objects.", "messages");
        return [.. a.Select((e, i) =>
        {
            if (e is not JsonObject o || o["role"]?.GetValueKind() != System.Text.Json.JsonValueKind.String)
                throw new ApiError(400, $"messages[{i}] must be an object with a string 'role'.", "messages");
            string content = o["content"] switch
            {
                JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.String => v.GetValue<string>(),
                JsonArray parts when parts.All(p => p?["type"]?.GetValue<string>() == "text") => string.Concat(parts.Select(p => p!["text"]?.GetValue<string>())),
                null => "",
                _ => throw new ApiError(400, $"messages[{i}].content must be a string or a list of text parts.", "messages"),
            };
            return new ChatMessage(o["role"]!.GetValue<string>(), content);
        })];
    }

    /// <summary>The row cut at the first stop string (generation ran on; the tokens up to the one completing the match are
    /// kept, the text ends before the match), its text, and vLLM's stop_reason: the matched string, a requested stop token id, or null.</summary>
    private static (RowResult Row, string Text, JsonNode? StopReason) Finish(RowResult row, HfTokenizer? tok, Sampling s)
    {
        if (tok is null) return (row, "", StopIdReason(row, s));
        if (s.StopStrings.Length > 0)
            for (int c = 1; c <= row.Tokens.Length; c++)
            {
                var text = tok.Decode(row.Tokens[..c], skipSpecialTokens: true);
                var hit = s.StopStrings.Select(x => (x, at: text.IndexOf(x, StringComparison.Ordinal))).Where(h => h.at >= 0).OrderBy(h => h.at).FirstOrDefault();
                if (hit.x is not null)
                    return (row with { Tokens = row.Tokens[..c], LogProbs = row.LogProbs[..c], TopIds = row.TopIds[..c], TopLogProbs = row.TopLogProbs[..c], Stopped = true },
                        text[..hit.at], JsonValue.Create(hit.x));
            }
        return (row, tok.Decode(row.Tokens, skipSpecialTokens: true), StopIdReason(row, s));
    }

    private static JsonNode? StopIdReason(RowResult row, Sampling s) =>
        row.Stopped && s.RequestStopIds.Contains(row.Tokens[^1]) ? JsonValue.Create(row.Tokens[^1]) : null;

    private static string TokenString(HfTokenizer? tok, int id, bool asIds) =>
        asIds || tok is null ? "token_id:" + id.ToString(CultureInfo.InvariantCulture) : tok.Decode([id]);

    /// <summary>SGLang's shape: {"model_path", "weight_version"?} → {"success", "message", "num_paused_requests"} (400 with success = false on failure).</summary>
    private async Task UpdateWeightsFromDisk(HttpContext ctx)
    {
        JsonObject answer;
        try
        {
            var b = await RequestBody.ReadAsync(ctx.Request.Body, ctx.RequestAborted);
            var path = b.String("model_path") ?? throw new ApiError(400, "'model_path' is required.", "model_path");
            var version = await _engine.Reload(new ReloadJob(path, b.String("weight_version")));
            answer = new JsonObject { ["success"] = true, ["message"] = $"Succeeded to update model weights (version {version}).", ["num_paused_requests"] = 0, ["weight_version"] = version };
        }
        catch (Exception e) when (e is ApiError or UserError or IOException)
        {
            ctx.Response.StatusCode = 400;
            answer = new JsonObject { ["success"] = false, ["message"] = e.Message, ["num_paused_requests"] = 0 };
        }
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(answer.ToJsonString(), ctx.RequestAborted);
    }

    /// <summary>vLLM's dev-mode endpoint: {"method": "reload_weights", "kwargs": {"model_path"?, "weight_version"?}}; without a path the folder served now is read again.</summary>
    private async Task<JsonNode> CollectiveRpc(HttpContext ctx)
    {
        var b = await RequestBody.ReadAsync(ctx.Request.Body, ctx.RequestAborted);
        var method = b.String("method");
        if (method != "reload_weights") throw new ApiError(400, $"collective_rpc method '{method}' is not supported; only reload_weights is.", "method");
        var kwargs = b.Json["kwargs"] is JsonObject k ? new RequestBody(k) : null;
        var version = await _engine.Reload(new ReloadJob(kwargs?.String("model_path"), kwargs?.String("weight_version")));
        return new JsonObject { ["results"] = new JsonArray(new JsonObject { ["weight_version"] = version }) };
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _engine.Dispose();
    }
}

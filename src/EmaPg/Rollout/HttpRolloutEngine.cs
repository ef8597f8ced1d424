using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;
using EmaPg.Model;
using EmaPg.Sampling;
using static TorchSharp.torch;

namespace EmaPg.Rollout;

/// <summary>How the trainer tells a server to load new weights from a folder.</summary>
public enum ReloadApi
{
    /// <summary>SGLang's <c>POST /update_weights_from_disk {"model_path", "weight_version"}</c>, then <c>GET /get_weight_version</c> (emapg serve too).</summary>
    UpdateWeightsFromDisk,
    /// <summary>vLLM's <c>POST /collective_rpc {"method": "reload_weights"}</c> (dev mode): the server re-reads the folder it was started from.</summary>
    CollectiveRpc,
}

/// <summary>Settings of <see cref="HttpRolloutEngine"/>.</summary>
public sealed record HttpRolloutOptions
{
    /// <summary>Base URLs (scheme, host, port) of the servers.</summary>
    public required IReadOnlyList<Uri> Servers { get; init; }
    /// <summary>Folder the servers can read, where the policy is written before each rollout.</summary>
    public required string WeightsDir { get; init; }
    public RolloutApi Api { get; init; } = RolloutApi.OpenAi;
    public ReloadApi Reload { get; init; } = ReloadApi.UpdateWeightsFromDisk;
    /// <summary>Requests in flight per server.</summary>
    public int Concurrency { get; init; } = 4;
    /// <summary>A request (or a reload) that takes longer counts as a failure of its server.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);

    public HttpRolloutOptions Validated()
    {
        if (Servers.Count == 0) throw new UserError("rollout_servers must name at least one URL.");
        Check.Range("rollout_concurrency", Concurrency, 1, 1024);
        Check.Range("rollout_timeout", Timeout.TotalSeconds, 0, 86400, minInclusive: false);
        return this;
    }

    /// <summary>Comma-separated http(s) URLs → base URIs; a malformed one is an error naming it.</summary>
    public static IReadOnlyList<Uri> ParseServers(string list) =>
        list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(s =>
            Uri.TryCreate(s, UriKind.Absolute, out var u) && (u.Scheme == "http" || u.Scheme == "https")
                ? new Uri(u.GetLeftPart(UriPartial.Authority))
                : throw new UserError($"rollout_servers: '{s}' is not an http(s) URL such as http://127.0.0.1:8000.")).ToList();
}

/// <summary>
/// Rollouts on inference servers over HTTP (vLLM, SGLang, emapg serve). Before each rollout the policy is written as a
/// Hugging Face folder and every server reloads it; the rollout waits until each reports the new version, and a server
/// that fails to is left out. Each prompt's n samples are one request; requests go to the live servers with bounded
/// concurrency, and a request whose server errors, times out or dies is sent again to another (a request's samples are
/// kept only from the one response that succeeded, so none is lost or duplicated). With no server left the rollout
/// throws <see cref="RolloutServersUnavailableError"/>.
/// </summary>
public sealed class HttpRolloutEngine : IRolloutEngine
{
    private sealed class Server(Uri uri)
    {
        public Uri Uri { get; } = uri;
        public bool Alive { get; set; }
        public string? Model { get; set; }
    }

    private sealed record Request(int Start, int Count, int[] Prompt);

    private readonly HttpRolloutOptions _o;
    private readonly Action<CausalLM, string> _save;
    private readonly Action<string>? _log;
    private readonly HttpClient _http;
    private readonly List<Server> _servers;
    private int _syncs;
    private string? _lastFolder;

    /// <param name="saveWeights">writes a policy as a Hugging Face folder the servers can load (config, weights, tokenizer files)</param>
    public HttpRolloutEngine(HttpRolloutOptions options, Action<CausalLM, string> saveWeights, Action<string>? log = null)
        : this(options, saveWeights, log, handler: null) { }

    /// <param name="handler">test hook: answers the HTTP requests instead of the network</param>
    internal HttpRolloutEngine(HttpRolloutOptions options, Action<CausalLM, string> saveWeights, Action<string>? log, HttpMessageHandler? handler)
    {
        _o = options.Validated();
        _save = saveWeights;
        _log = log;
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        _http.Timeout = System.Threading.Timeout.InfiniteTimeSpan;
        _servers = [.. _o.Servers.Select(u => new Server(u))];
    }

    /// <summary>Test hook: called after each successful request with the server that answered it.</summary>
    internal Action<Uri>? AfterRequest { get; set; }

    public RolloutOutput Generate(CausalLM policy, int iteration, IReadOnlyList<int[]> prompts, SamplingOptions options, ulong seed)
    {
        var sw = Stopwatch.StartNew();
        string version = Sync(policy, iteration);
        double syncSeconds = sw.Elapsed.TotalSeconds;
        var requests = new List<Request>();
        for (int i = 0; i < prompts.Count;)
        {
            int j = i + 1;
            while (j < prompts.Count && prompts[j].AsSpan().SequenceEqual(prompts[i])) j++;
            requests.Add(new Request(i, j - i, prompts[i]));
            i = j;
        }
        var samples = new ServerSample[prompts.Count];
        int failures = Run(requests, samples, options);
        var gen = Assemble(policy, prompts, samples, options, version);
        var metrics = new Dictionary<string, double>
        {
            ["rollout_samples"] = samples.Length,
            ["rollout_server_failures"] = failures,
            ["rollout_servers_alive"] = _servers.Count(s => s.Alive),
            ["rollout_stale_samples"] = samples.Count(s => s.WeightVersion is not null && s.WeightVersion != version),
            ["rollout_sync_seconds"] = syncSeconds,
        };
        return new RolloutOutput(gen, metrics);
    }

    /// <summary>Writes the policy and makes every reachable server load it; returns the version the samples will carry.</summary>
    private string Sync(CausalLM policy, int iteration)
    {
        _syncs++;
        string version = string.Create(CultureInfo.InvariantCulture, $"{iteration}.{_syncs}");
        string folder;
        if (_o.Reload == ReloadApi.CollectiveRpc)
        {
            // vLLM re-reads the folder it was started from: replace its content by a rename, never leaving it half-written.
            folder = Path.GetFullPath(_o.WeightsDir);
            var fresh = folder.TrimEnd('/') + ".partial";
            if (Directory.Exists(fresh)) Directory.Delete(fresh, recursive: true);
            _save(policy, fresh);
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            Directory.Move(fresh, folder);
        }
        else
        {
            folder = Path.GetFullPath(Path.Combine(_o.WeightsDir, "v" + _syncs.ToString(CultureInfo.InvariantCulture)));
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            _save(policy, folder);
        }
        Task.WhenAll(_servers.Select(s => Reload(s, folder, version))).GetAwaiter().GetResult();
        if (!_servers.Any(s => s.Alive))
            throw new RolloutServersUnavailableError($"no rollout server loaded the weights of iteration {iteration} ({string.Join(", ", _servers.Select(s => s.Uri))}); start them and resume the run (emapg train --resume).");
        if (_lastFolder is not null && _lastFolder != folder && Directory.Exists(_lastFolder)) Directory.Delete(_lastFolder, recursive: true);
        _lastFolder = folder;
        return version;
    }

    private async Task Reload(Server s, string folder, string version)
    {
        try
        {
            using var cts = new CancellationTokenSource(_o.Timeout);
            if (_o.Reload == ReloadApi.CollectiveRpc)
                RolloutWire.CheckReload(_o.Reload, await Post(s, "/collective_rpc", new JsonObject { ["method"] = "reload_weights" }, cts.Token));
            else
            {
                RolloutWire.CheckReload(_o.Reload, await Post(s, "/update_weights_from_disk", new JsonObject { ["model_path"] = folder, ["weight_version"] = version }, cts.Token));
                var reported = (await GetJson(s, "/get_weight_version", cts.Token))["weight_version"]?.GetValue<string>();
                if (reported != version) throw new InvalidOperationException($"it reports weight version '{reported}' after loading '{version}'");
            }
            if (_o.Api == RolloutApi.OpenAi)
                s.Model = ((await GetJson(s, "/v1/models", cts.Token))["data"] as JsonArray)?.FirstOrDefault()?["id"]?.GetValue<string>();
            if (!s.Alive) _log?.Invoke($"rollout server {s.Uri}: serving weight version {version}");
            s.Alive = true;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException or InvalidOperationException or FormatException or System.Text.Json.JsonException)
        {
            if (s.Alive) _log?.Invoke($"rollout server {s.Uri} left out: it did not load weight version {version} ({Short(e)})");
            s.Alive = false;
        }
    }

    /// <summary>Sends every request, each to one live server at a time; returns how many times a server failed.</summary>
    private int Run(List<Request> requests, ServerSample[] samples, SamplingOptions options)
    {
        var queue = new ConcurrentQueue<Request>(requests);
        int failures = 0;
        while (!queue.IsEmpty)
        {
            var live = _servers.Where(s => s.Alive).ToList();
            if (live.Count == 0)
                throw new RolloutServersUnavailableError($"every rollout server failed during the rollout ({string.Join(", ", _servers.Select(s => s.Uri))}); {queue.Count} of {requests.Count} requests were not served. Start the servers and resume the run (emapg train --resume).");
            var workers = live.SelectMany(s => Enumerable.Range(0, _o.Concurrency).Select(_ => Worker(s))).ToArray();
            Task.WhenAll(workers).GetAwaiter().GetResult();
        }
        return failures;

        async Task Worker(Server s)
        {
            while (s.Alive && queue.TryDequeue(out var r))
            {
                try
                {
                    using var cts = new CancellationTokenSource(_o.Timeout);
                    var body = RolloutWire.Request(_o.Api, s.Model, r.Prompt, r.Count, options.Temperature, options.MaxNewTokens, options.StopTokens, options.ReturnTopK);
                    var json = await Post(s, RolloutWire.Path(_o.Api), body, cts.Token);
                    var got = RolloutWire.Parse(_o.Api, json, options.ReturnTopK, r.Prompt);
                    if (got.Count != r.Count) throw new FormatException($"malformed rollout response: {got.Count} samples for n = {r.Count}.");
                    for (int i = 0; i < r.Count; i++) samples[r.Start + i] = got[i];
                    AfterRequest?.Invoke(s.Uri);
                }
                catch (HttpRequestException e) when (e.StatusCode is { } code && (int)code is >= 400 and < 500 and not 408 and not 429)
                {
                    // The server is up and refuses what the run asks for: another server would refuse it too.
                    throw new UserError($"rollout server {s.Uri} rejected a rollout request ({Short(e)}); its limits or its model do not fit the run: it must allow logprobs = kl_topk = {options.ReturnTopK} per token (vLLM's and emapg serve's --max-logprobs default to 20; start them with --max-logprobs ≥ {options.ReturnTopK}) and serve the policy's vocabulary.");
                }
                catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException or FormatException or System.Text.Json.JsonException or InvalidOperationException)
                {
                    // Only the first failure of a server is reported; its other requests in flight fail the same way.
                    lock (queue)
                    {
                        if (s.Alive) _log?.Invoke($"rollout server {s.Uri} failed ({Short(e)}); its requests go to the other servers.");
                        s.Alive = false;
                        failures++;
                    }
                    queue.Enqueue(r);
                    return;
                }
            }
        }
    }

    private GenerationResult Assemble(CausalLM policy, IReadOnlyList<int[]> prompts, ServerSample[] samples, SamplingOptions options, string version)
    {
        int vocab = policy.Config.VocabSize, k = options.ReturnTopK;
        foreach (var s in samples)
        {
            if (s.Tokens.Length > options.MaxNewTokens) throw new FormatException($"malformed rollout response: {s.Tokens.Length} tokens for max_tokens = {options.MaxNewTokens}.");
            if (s.Tokens.Concat(s.TopK.SelectMany(t => t)).Any(id => id < 0 || id >= vocab))
                throw new UserError($"a rollout server returned a token id outside the policy's vocabulary [0, {vocab - 1}]: it serves another model.");
        }
        int b = samples.Length, l = Math.Max(1, samples.Max(s => s.Tokens.Length));
        var ids = new long[b * l];
        var mask = new float[b * l];
        var logp = new float[b * l];
        var top = k > 0 ? new long[b * l * k] : null;
        var stop = options.StopTokens.ToHashSet();
        for (int i = 0; i < b; i++)
            for (int j = 0; j < l; j++)
            {
                bool real = j < samples[i].Tokens.Length;
                ids[i * l + j] = real ? samples[i].Tokens[j] : options.PadToken;
                mask[i * l + j] = real ? 1f : 0f;
                logp[i * l + j] = real ? samples[i].LogProbs[j] : 0f;
                if (top is not null && real)
                    for (int c = 0; c < k; c++) top[(i * l + j) * k + c] = samples[i].TopK[j][c];
            }
        var device = policy.Device;
        var (promptIds, promptMask) = PromptBatch.LeftPad(prompts, options.PadToken, device);
        return new GenerationResult(promptIds, promptMask, tensor(ids, [b, l], device: device), tensor(mask, [b, l], device: device),
            tensor(logp, [b, l], device: device), top is null ? null : tensor(top, [b, l, k], device: device),
            samples.Select(s => s.Tokens).ToArray(), samples.Select(s => s.Tokens.Length > 0 && stop.Contains(s.Tokens[^1])).ToArray(),
            weightVersions: samples.Select(s => s.WeightVersion ?? version).ToArray());
    }

    private async Task<string> Post(Server s, string path, JsonObject body, CancellationToken ct)
    {
        using var resp = await _http.PostAsync(new Uri(s.Uri, path), JsonContent.Create(body), ct);
        var text = await resp.Content.ReadAsStringAsync(ct);
        if (!resp.IsSuccessStatusCode) throw new HttpRequestException($"{path} answered {(int)resp.StatusCode}: {Truncate(RolloutWire.ErrorMessage(text))}", null, resp.StatusCode);
        return text;
    }

    private async Task<JsonNode> GetJson(Server s, string path, CancellationToken ct)
    {
        using var resp = await _http.GetAsync(new Uri(s.Uri, path), ct);
        var text = await resp.Content.ReadAsStringAsync(ct);
        if (!resp.IsSuccessStatusCode) throw new HttpRequestException($"{path} answered {(int)resp.StatusCode}: {Truncate(RolloutWire.ErrorMessage(text))}");
        return JsonNode.Parse(text) ?? throw new FormatException($"{path} answered null");
    }

    private static string Short(Exception e) => e is OperationCanceledException ? "timed out" : Truncate(e.Message);
    private static string Truncate(string s) => s.Length <= 200 ? s : s[..200] + "…";

    public void Dispose() => _http.Dispose();
}

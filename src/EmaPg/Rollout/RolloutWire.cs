using System.Globalization;
using System.Text.Json.Nodes;
using EmaPg.Common;

namespace EmaPg.Rollout;

/// <summary>One sampled response as a server returned it: tokens, their sampling log-probs, and per position the ids of
/// the server's top-k (descending log-prob; empty when k = 0).</summary>
public sealed record ServerSample(int[] Tokens, float[] LogProbs, int[][] TopK, string? WeightVersion);

/// <summary>The wire formats of the engines a rollout can run on.</summary>
public enum RolloutApi
{
    /// <summary>OpenAI-compatible <c>/v1/completions</c> with vLLM's extensions (<c>stop_token_ids</c>, <c>return_tokens_as_token_ids</c>): vLLM, emapg serve.</summary>
    OpenAi,
    /// <summary>SGLang's native <c>/generate</c> (<c>input_ids</c>, <c>return_logprob</c>, <c>top_logprobs_num</c>).</summary>
    Sglang,
}

/// <summary>
/// Requests and responses of the rollout engines, as JSON: the request for n samples of one token-id prompt, and the
/// parse of a response into <see cref="ServerSample"/>s. Anything missing or malformed is an error naming the field.
/// </summary>
public static class RolloutWire
{
    public const string TokenIdPrefix = "token_id:";

    public static string Path(RolloutApi api) => api == RolloutApi.OpenAi ? "/v1/completions" : "/generate";

    /// <summary>The body asking for <paramref name="n"/> samples of <paramref name="prompt"/>; k = 0 still asks for one log-prob (the sampled token's).</summary>
    public static JsonObject Request(RolloutApi api, string? model, int[] prompt, int n, double temperature, int maxTokens, IReadOnlyList<int> stopTokenIds, int k)
    {
        var ids = new JsonArray(prompt.Select(i => (JsonNode)i).ToArray());
        var stops = new JsonArray(stopTokenIds.Select(i => (JsonNode)i).ToArray());
        if (api == RolloutApi.OpenAi)
        {
            var o = new JsonObject
            {
                ["prompt"] = ids, ["n"] = n, ["max_tokens"] = maxTokens, ["temperature"] = temperature,
                ["stop_token_ids"] = stops, ["logprobs"] = Math.Max(1, k), ["return_tokens_as_token_ids"] = true,
                ["skip_special_tokens"] = false,
            };
            if (model is not null) o["model"] = model;
            return o;
        }
        return new JsonObject
        {
            ["input_ids"] = ids,
            ["sampling_params"] = new JsonObject
            {
                ["n"] = n, ["max_new_tokens"] = maxTokens, ["temperature"] = temperature, ["stop_token_ids"] = stops,
                ["skip_special_tokens"] = false, ["no_stop_trim"] = true,
            },
            ["return_logprob"] = true, ["top_logprobs_num"] = k, ["logprob_start_len"] = -1,
        };
    }

    /// <summary>The n samples of a response, in choice order.</summary>
    public static IReadOnlyList<ServerSample> Parse(RolloutApi api, string json, int k) =>
        api == RolloutApi.OpenAi ? ParseOpenAi(json, k) : ParseSglang(json, k);

    /// <summary>vLLM's completions shape: choices[i].logprobs.{tokens ("token_id:N"), token_logprobs, top_logprobs ({"token_id:N": lp})}.</summary>
    public static IReadOnlyList<ServerSample> ParseOpenAi(string json, int k)
    {
        var root = JsonNode.Parse(json) as JsonObject ?? throw Bad("the response is not a JSON object");
        string? version = root["weight_version"]?.GetValue<string>();
        var choices = root["choices"] as JsonArray ?? throw Bad("the response has no 'choices' array");
        var samples = new ServerSample?[choices.Count];
        foreach (var node in choices)
        {
            var c = node as JsonObject ?? throw Bad("a choice is not an object");
            int index = c["index"]?.GetValue<int>() ?? throw Bad("a choice has no 'index'");
            if (index < 0 || index >= samples.Length || samples[index] is not null) throw Bad($"choice index {index} is out of range or repeated");
            var lp = c["logprobs"] as JsonObject ?? throw Bad($"choice {index} has no 'logprobs' (the request asked for them)");
            var tokens = lp["tokens"] as JsonArray ?? throw Bad($"choice {index}: logprobs has no 'tokens'");
            var values = lp["token_logprobs"] as JsonArray ?? throw Bad($"choice {index}: logprobs has no 'token_logprobs'");
            var tops = lp["top_logprobs"] as JsonArray;
            if (values.Count != tokens.Count || (k > 0 && tops?.Count != tokens.Count))
                throw Bad($"choice {index}: tokens, token_logprobs and top_logprobs differ in length");
            var ids = tokens.Select(t => TokenId(t!.GetValue<string>())).ToArray();
            var logps = values.Select(v => (float)v!.GetValue<double>()).ToArray();
            var topk = new int[ids.Length][];
            for (int j = 0; j < ids.Length; j++)
            {
                if (k == 0) { topk[j] = []; continue; }
                var d = tops![j] as JsonObject ?? throw Bad($"choice {index}: top_logprobs[{j}] is not an object");
                topk[j] = TopK(d.Select(kv => (TokenId(kv.Key), kv.Value!.GetValue<double>())), k, $"choice {index}, position {j}");
            }
            samples[index] = new ServerSample(ids, logps, topk, version);
        }
        return samples.Select((s, i) => s ?? throw Bad($"choice {i} is missing")).ToList();
    }

    /// <summary>SGLang's /generate shape: one object (n = 1) or an array of them, each with meta_info.output_token_logprobs
    /// [[lp, id, text], …] and meta_info.output_top_logprobs [[[lp, id, text], …], …].</summary>
    public static IReadOnlyList<ServerSample> ParseSglang(string json, int k)
    {
        var root = JsonNode.Parse(json);
        var items = root is JsonArray a ? a.ToList() : [root];
        return items.Select((node, i) =>
        {
            var meta = node?["meta_info"] as JsonObject ?? throw Bad($"sample {i} has no 'meta_info'");
            var outLp = meta["output_token_logprobs"] as JsonArray ?? throw Bad($"sample {i}: meta_info has no 'output_token_logprobs' (the request asked for return_logprob)");
            var ids = outLp.Select(e => e![1]!.GetValue<int>()).ToArray();
            var logps = outLp.Select(e => (float)e![0]!.GetValue<double>()).ToArray();
            var topk = new int[ids.Length][];
            var tops = meta["output_top_logprobs"] as JsonArray;
            if (k > 0 && tops?.Count != ids.Length) throw Bad($"sample {i}: output_top_logprobs does not cover every output token");
            for (int j = 0; j < ids.Length; j++)
                topk[j] = k == 0 ? [] : TopK(((JsonArray)tops![j]!).Select(e => (e![1]!.GetValue<int>(), e[0]!.GetValue<double>())), k, $"sample {i}, position {j}");
            return new ServerSample(ids, logps, topk, meta["weight_version"]?.GetValue<string>());
        }).ToList();
    }

    /// <summary>"token_id:N" → N (vLLM's return_tokens_as_token_ids).</summary>
    public static int TokenId(string token)
    {
        if (!token.StartsWith(TokenIdPrefix, StringComparison.Ordinal) || !int.TryParse(token.AsSpan(TokenIdPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int id))
            throw Bad($"token '{token}' is not of the form token_id:N (the request set return_tokens_as_token_ids)");
        return id;
    }

    // vLLM adds the sampled token to a position's top_logprobs when it is not among them, so there can be k + 1 entries.
    private static int[] TopK(IEnumerable<(int Id, double Logp)> entries, int k, string where)
    {
        var list = entries.OrderByDescending(e => e.Logp).ThenBy(e => e.Id).Take(k).Select(e => e.Id).ToArray();
        if (list.Length < k)
            throw new UserError($"rollout server returned {list.Length} top log-probs at {where}, fewer than the {k} the KL needs (kl_topk); start the server with a larger --max-logprobs.");
        return list;
    }

    private static FormatException Bad(string what) => new($"malformed rollout response: {what}.");
}

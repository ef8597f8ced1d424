using System.Globalization;
using System.Text.Json.Nodes;
using EmaPg.Common;

namespace EmaPg.Rollout;

/// <summary>One sampled response as a server returned it: tokens, their sampling log-probs, per position the ids of the
/// server's top-k (descending log-prob; empty when k = 0), and why it ended ("stop": a stop token, "length": max tokens).</summary>
public sealed record ServerSample(int[] Tokens, float[] LogProbs, int[][] TopK, string? WeightVersion, string FinishReason);

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

    /// <summary>The n samples of a response to a request for <paramref name="prompt"/>, in choice order.</summary>
    public static IReadOnlyList<ServerSample> Parse(RolloutApi api, string json, int k, int[] prompt) =>
        api == RolloutApi.OpenAi ? ParseOpenAi(json, k, prompt) : ParseSglang(json, k);

    /// <summary>vLLM's completions shape: choices[i].logprobs.{tokens ("token_id:N"), token_logprobs, top_logprobs ({"token_id:N": lp})}.
    /// A response that echoes the prompt (echo = true: the prompt's tokens first, the first with a null log-prob) is
    /// accepted when <paramref name="prompt"/> is given and the echoed tokens are exactly it; they are dropped.</summary>
    public static IReadOnlyList<ServerSample> ParseOpenAi(string json, int k, int[]? prompt = null)
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
            var ids = tokens.Select(t => TokenId(t?.GetValue<string>() ?? throw Bad($"choice {index}: a token is null"))).ToArray();
            int skip = EchoedPromptLength(ids, values, prompt, index);
            int count = ids.Length - skip;
            var logps = new float[count];
            var topk = new int[count][];
            for (int j = 0; j < count; j++)
            {
                logps[j] = (float)(values[skip + j]?.GetValue<double>() ?? throw Bad($"choice {index}: token_logprobs[{skip + j}] is null"));
                if (k == 0) { topk[j] = []; continue; }
                var d = tops![skip + j] as JsonObject ?? throw Bad($"choice {index}: top_logprobs[{skip + j}] is not an object");
                topk[j] = TopK(d.Select(kv => (TokenId(kv.Key), kv.Value?.GetValue<double>() ?? throw Bad($"choice {index}: a top log-prob is null"))), k, $"choice {index}, position {skip + j}");
            }
            var output = ids[skip..];
            string finish = c["finish_reason"]?.GetValue<string>() ?? throw Bad($"choice {index} has no 'finish_reason'");
            CheckFinish(finish, $"choice {index}");
            // vLLM's stop_reason is the stop token id that ended the sample (null for EOS or length): it must be the last token.
            if (c["stop_reason"] is JsonValue sr && sr.GetValueKind() == System.Text.Json.JsonValueKind.Number && (output.Length == 0 || output[^1] != sr.GetValue<int>()))
                throw Bad($"choice {index}: stop_reason {sr.GetValue<int>()} is not the last token");
            samples[index] = new ServerSample(output, logps, topk, version, finish);
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
            // Each entry is [logprob, token_id, text]; text is null unless return_text_in_logprobs.
            var entries = outLp.Select((e, j) => Entry(e, $"sample {i}: output_token_logprobs[{j}]")).ToArray();
            var ids = entries.Select(e => e.Id).ToArray();
            var logps = entries.Select(e => (float)e.Logp).ToArray();
            if (node!["output_ids"] is JsonArray outIds && !outIds.Select(x => x!.GetValue<int>()).SequenceEqual(ids))
                throw Bad($"sample {i}: output_ids and output_token_logprobs name different tokens");
            var topk = new int[ids.Length][];
            var tops = meta["output_top_logprobs"] as JsonArray;
            if (k > 0 && tops?.Count != ids.Length) throw Bad($"sample {i}: output_top_logprobs does not cover every output token");
            for (int j = 0; j < ids.Length; j++)
                topk[j] = k == 0 ? [] : TopK((tops![j] as JsonArray ?? throw Bad($"sample {i}: output_top_logprobs[{j}] is not a list"))
                    .Select(e => Entry(e, $"sample {i}: output_top_logprobs[{j}]")), k, $"sample {i}, position {j}");
            var reason = meta["finish_reason"] as JsonObject ?? throw Bad($"sample {i}: meta_info has no 'finish_reason'");
            string finish = reason["type"]?.GetValue<string>() ?? throw Bad($"sample {i}: finish_reason has no 'type'");
            CheckFinish(finish, $"sample {i}");
            return new ServerSample(ids, logps, topk, meta["weight_version"]?.GetValue<string>(), finish);
        }).ToList();
    }

    /// <summary>Checks a reload endpoint's answer: SGLang's <c>{"success", "message", …}</c> (update_weights_from_disk) must say
    /// success; vLLM's collective_rpc answers <c>{"results": [one per worker]}</c>, or nothing when the method returns None.</summary>
    public static void CheckReload(ReloadApi reload, string body)
    {
        if (reload == ReloadApi.CollectiveRpc)
        {
            if (string.IsNullOrWhiteSpace(body)) return;
            if (JsonNode.Parse(body) is not JsonObject o || o["results"] is not JsonArray)
                throw Bad("collective_rpc answered without a 'results' list");
            return;
        }
        var answer = JsonNode.Parse(body) as JsonObject ?? throw Bad("update_weights_from_disk answered something other than a JSON object");
        var success = answer["success"] ?? throw Bad("update_weights_from_disk answered without 'success'");
        if (success.GetValueKind() != System.Text.Json.JsonValueKind.True)
            throw new InvalidOperationException($"it did not load the weights: {answer["message"]?.GetValue<string>() ?? "no message"}");
    }

    /// <summary>The message of an error answer: OpenAI's (vLLM, emapg serve) <c>{"error": {"message"}}</c>, SGLang's
    /// <c>{"message"}</c> or FastAPI's <c>{"detail"}</c>; the body itself when it is none of these.</summary>
    public static string ErrorMessage(string body)
    {
        try
        {
            if (JsonNode.Parse(body) is JsonObject o)
            {
                var m = o["error"] is JsonObject e ? e["message"] : o["message"] ?? o["detail"];
                if (m is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.String) return v.GetValue<string>();
            }
        }
        catch (System.Text.Json.JsonException) { }
        return body;
    }

    // vLLM and SGLang end a sample with "stop" (stop token or string) or "length"; "abort" (the server cancelled it, e.g. for
    // a weight update) or anything else means the sample is not a finished draw from the policy.
    private static void CheckFinish(string finish, string where)
    {
        if (finish is not ("stop" or "length")) throw Bad($"{where} ended with finish_reason '{finish}' (not stop or length): the server did not finish it");
    }

    private static int EchoedPromptLength(int[] ids, JsonArray values, int[]? prompt, int index)
    {
        if (values.Count == 0 || values[0] is not null) return 0;
        if (prompt is null || ids.Length < prompt.Length || !ids.AsSpan(0, prompt.Length).SequenceEqual(prompt))
            throw Bad($"choice {index}: token_logprobs[0] is null, so the response echoes a prompt (echo = true), and not the one requested");
        return prompt.Length;
    }

    private static (int Id, double Logp) Entry(JsonNode? e, string where) =>
        e is JsonArray a && a.Count >= 2 && a[0] is JsonValue lp && lp.GetValueKind() == System.Text.Json.JsonValueKind.Number && a[1] is JsonValue id
            ? (id.GetValue<int>(), lp.GetValue<double>())
            : throw Bad($"{where} is not [logprob, token_id, text] with a log-prob");

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

using System.Text.Json;
using System.Text.Json.Nodes;

namespace EmaPg.Serving;

/// <summary>A request the server refuses, answered as OpenAI's error object {"error": {"message", "type", "param", "code"}}.</summary>
internal sealed class ApiError(int status, string message, string? param = null) : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string Type => Status == 404 ? "NotFoundError" : Status >= 500 ? "InternalServerError" : "BadRequestError";

    public JsonObject ToJson() => new()
    {
        ["error"] = new JsonObject { ["message"] = Message, ["type"] = Type, ["param"] = Param, ["code"] = Status },
    };
}

/// <summary>Typed reads of a request's JSON fields; a wrong type or range is a 400 naming the field.</summary>
internal sealed class RequestBody(JsonObject o)
{
    public JsonObject Json { get; } = o;

    public static async Task<RequestBody> ReadAsync(Stream body, CancellationToken ct)
    {
        JsonNode? node;
        try { node = await JsonNode.ParseAsync(body, cancellationToken: ct); }
        catch (JsonException e) { throw new ApiError(400, $"the request body is not valid JSON: {e.Message}"); }
        return new RequestBody(node as JsonObject ?? throw new ApiError(400, "the request body must be a JSON object."));
    }

    public bool Has(string name) => Json[name] is not null && Json[name]!.GetValueKind() != JsonValueKind.Null;

    public int? Int(string name, int min, int max)
    {
        if (!Has(name)) return null;
        var n = Json[name]!;
        if (n.GetValueKind() != JsonValueKind.Number || !n.AsValue().TryGetValue(out long v) || v < min || v > max)
            throw new ApiError(400, $"'{name}' must be an integer in [{min}, {max}], got {n.ToJsonString()}.", name);
        return (int)v;
    }

    public long? Long(string name)
    {
        if (!Has(name)) return null;
        var n = Json[name]!;
        if (n.GetValueKind() != JsonValueKind.Number || !n.AsValue().TryGetValue(out long v))
            throw new ApiError(400, $"'{name}' must be an integer, got {n.ToJsonString()}.", name);
        return v;
    }

    public double? Real(string name, double min, double max, bool minOpen = false)
    {
        if (!Has(name)) return null;
        var n = Json[name]!;
        if (n.GetValueKind() != JsonValueKind.Number) throw new ApiError(400, $"'{name}' must be a number, got {n.ToJsonString()}.", name);
        double v = n.GetValue<double>();
        if (!(minOpen ? v > min : v >= min) || v > max)
            throw new ApiError(400, $"'{name}' must be in {(minOpen ? "(" : "[")}{min}, {max}], got {v}.", name);
        return v;
    }

    public bool? Bool(string name)
    {
        if (!Has(name)) return null;
        var k = Json[name]!.GetValueKind();
        if (k is not (JsonValueKind.True or JsonValueKind.False)) throw new ApiError(400, $"'{name}' must be true or false, got {Json[name]!.ToJsonString()}.", name);
        return k == JsonValueKind.True;
    }

    public string? String(string name)
    {
        if (!Has(name)) return null;
        if (Json[name]!.GetValueKind() != JsonValueKind.String) throw new ApiError(400, $"'{name}' must be a string, got {Json[name]!.ToJsonString()}.", name);
        return Json[name]!.GetValue<string>();
    }

    /// <summary>A string or a list of strings (OpenAI's <c>stop</c>).</summary>
    public string[] Strings(string name)
    {
        if (!Has(name)) return [];
        var n = Json[name]!;
        if (n.GetValueKind() == JsonValueKind.String) return [n.GetValue<string>()];
        if (n is JsonArray a && a.All(e => e?.GetValueKind() == JsonValueKind.String)) return [.. a.Select(e => e!.GetValue<string>())];
        throw new ApiError(400, $"'{name}' must be a string or a list of strings.", name);
    }

    public int[] Ints(string name, int vocab)
    {
        if (!Has(name)) return [];
        return Json[name] is JsonArray a ? TokenIds(a, name, vocab) : throw new ApiError(400, $"'{name}' must be a list of token ids.", name);
    }

    /// <summary>A list of token ids, each in [0, vocab).</summary>
    public static int[] TokenIds(JsonArray a, string name, int vocab) => [.. a.Select(e =>
    {
        if (e?.GetValueKind() != JsonValueKind.Number || !e.AsValue().TryGetValue(out long v) || v < 0 || v >= vocab)
            throw new ApiError(400, $"'{name}' holds {e?.ToJsonString() ?? "null"}, not a token id in [0, {vocab - 1}].", name);
        return (int)v;
    })];
}

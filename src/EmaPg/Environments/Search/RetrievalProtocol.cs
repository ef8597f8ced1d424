using System.Text.Json;
using System.Text.Json.Nodes;

namespace EmaPg.Environments.Search;

/// <summary>
/// Search-R1's retrieval-server protocol, the one JSON format of <see cref="RetrievalServer"/> and <see cref="HttpRetriever"/>:
/// <c>POST /retrieve {"queries":[…],"topk":k,"return_scores":true}</c> →
/// <c>{"result":[[{"document":{"id":…,"contents":…},"score":…},…],…]}</c>; with <c>return_scores</c> false each item is the
/// document itself. Documents of other servers may carry "title"/"text" instead of (or besides) "contents".
/// </summary>
public static class RetrievalProtocol
{
    public sealed record Request(IReadOnlyList<string> Queries, int? TopK, bool ReturnScores);

    public static string SerializeRequest(IReadOnlyList<string> queries, int topK) =>
        new JsonObject { ["queries"] = new JsonArray(queries.Select(q => (JsonNode?)JsonValue.Create(q)).ToArray()), ["topk"] = topK, ["return_scores"] = true }
            .ToJsonString(Relaxed);

    /// <summary>Parses a request body; a malformed one throws <see cref="FormatException"/> whose message says what is wrong.</summary>
    public static Request ParseRequest(string body)
    {
        using var doc = Parse(body, "request");
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("queries", out var qs) || qs.ValueKind != JsonValueKind.Array)
            throw new FormatException("the request must be a JSON object with \"queries\": an array of strings.");
        var queries = qs.EnumerateArray().Select(q => q.ValueKind == JsonValueKind.String ? q.GetString()! : throw new FormatException("every query must be a string.")).ToList();
        int? topK = null;
        if (root.TryGetProperty("topk", out var k) && k.ValueKind != JsonValueKind.Null)
            topK = k.ValueKind == JsonValueKind.Number && k.TryGetInt32(out int v) ? v : throw new FormatException("\"topk\" must be an integer.");
        bool scores = root.TryGetProperty("return_scores", out var s) && s.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False or JsonValueKind.Null => false,
            _ => throw new FormatException("\"return_scores\" must be true or false."),
        };
        return new Request(queries, topK, scores);
    }

    public static string SerializeResponse(IReadOnlyList<IReadOnlyList<RetrievedPassage>> results, bool returnScores)
    {
        var outer = new JsonArray();
        foreach (var list in results)
        {
            var inner = new JsonArray();
            foreach (var r in list)
            {
                var document = new JsonObject { ["id"] = r.Document.Id, ["contents"] = r.Document.Contents };
                inner.Add(returnScores ? new JsonObject { ["document"] = document, ["score"] = r.Score } : document);
            }
            outer.Add(inner);
        }
        return new JsonObject { ["result"] = outer }.ToJsonString(Relaxed);
    }

    // Quotes and angle brackets stay readable ("\"Title\"", "<div>") instead of \u0022 escapes; the JSON is the same.
    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Parses a server's reply to <paramref name="queryCount"/> queries; anything off-protocol throws <see cref="FormatException"/>.</summary>
    public static IReadOnlyList<IReadOnlyList<RetrievedPassage>> ParseResponse(string body, int queryCount)
    {
        using var doc = Parse(body, "reply");
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("result", out var result) || result.ValueKind != JsonValueKind.Array)
            throw new FormatException("the reply has no \"result\" array.");
        if (result.GetArrayLength() != queryCount)
            throw new FormatException($"the reply has {result.GetArrayLength()} results for {queryCount} queries.");
        return result.EnumerateArray().Select(list => list.ValueKind == JsonValueKind.Array
            ? (IReadOnlyList<RetrievedPassage>)list.EnumerateArray().Select(Item).ToList()
            : throw new FormatException("each result must be an array of passages.")).ToList();
    }

    private static RetrievedPassage Item(JsonElement item)
    {
        if (item.ValueKind != JsonValueKind.Object) throw new FormatException("a passage must be a JSON object.");
        if (item.TryGetProperty("document", out var d))
        {
            double score = item.TryGetProperty("score", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetDouble() : double.NaN;
            return new RetrievedPassage(Document(d), score);
        }
        return new RetrievedPassage(Document(item), double.NaN);
    }

    private static Passage Document(JsonElement d)
    {
        if (d.ValueKind != JsonValueKind.Object) throw new FormatException("\"document\" must be a JSON object.");
        string id = d.TryGetProperty("id", out var idEl) ? idEl.ValueKind == JsonValueKind.String ? idEl.GetString()! : idEl.GetRawText() : "";
        if (d.TryGetProperty("contents", out var c) && c.ValueKind == JsonValueKind.String) return new Passage(id, c.GetString()!);
        if (d.TryGetProperty("title", out var t) && d.TryGetProperty("text", out var x) && t.ValueKind == JsonValueKind.String && x.ValueKind == JsonValueKind.String)
            return new Passage(id, Passage.ContentsOf(t.GetString()!, x.GetString()!));
        throw new FormatException("a document needs a string \"contents\" or \"title\" and \"text\".");
    }

    private static JsonDocument Parse(string body, string what)
    {
        try { return JsonDocument.Parse(body); }
        catch (JsonException e) { throw new FormatException($"the {what} is not JSON ({e.Message})."); }
    }
}

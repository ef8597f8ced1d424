using System.Text.Json;
using EmaPg.Common;

namespace EmaPg.Environments.Search;

/// <summary>
/// Streams a corpus in Search-R1's JSONL format, one passage per line: <c>{"id":…,"contents":"\"Title\"\ntext"}</c> or
/// <c>{"title":…,"text":…}</c> (with an optional "id"; without one the passage's 0-based ordinal is its id). Blank lines
/// are skipped; anything else that is not such an object is an error naming the file and line.
/// </summary>
public static class CorpusReader
{
    public static IEnumerable<Passage> Read(string path)
    {
        if (!File.Exists(path)) throw new UserError($"--corpus '{path}' does not exist.");
        using var reader = new StreamReader(path);
        long lineNo = 0, ordinal = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            yield return Parse(line, path, lineNo, ordinal++);
        }
    }

    internal static Passage Parse(string line, string path, long lineNo, long ordinal)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new UserError($"{path}:{lineNo}: not a JSON object ({e.Message})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new UserError($"{path}:{lineNo}: expected a JSON object, got {root.ValueKind}.");
            string id = root.TryGetProperty("id", out var idEl) ? idEl.ValueKind switch
            {
                JsonValueKind.String => idEl.GetString()!,
                JsonValueKind.Number => idEl.GetRawText(),
                _ => throw new UserError($"{path}:{lineNo}: \"id\" must be a string or a number, got {idEl.ValueKind}."),
            } : ordinal.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (root.TryGetProperty("contents", out var contents))
                return new Passage(id, StringField(contents, "contents", path, lineNo));
            if (root.TryGetProperty("title", out var title) && root.TryGetProperty("text", out var text))
                return new Passage(id, Passage.ContentsOf(StringField(title, "title", path, lineNo), StringField(text, "text", path, lineNo)));
            throw new UserError($"{path}:{lineNo}: a passage needs \"contents\" or both \"title\" and \"text\".");
        }
    }

    private static string StringField(JsonElement e, string name, string path, long lineNo) =>
        e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new UserError($"{path}:{lineNo}: \"{name}\" must be a string, got {e.ValueKind}.");
}

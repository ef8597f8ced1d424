using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;

namespace EmaPg.Model.HuggingFace;

/// <summary>
/// What the model side needs to know of a folder's tokenizer files without tokenizing: how many ids the
/// vocabulary uses and which ids the special tokens named in tokenizer_config.json have.
/// </summary>
internal static class TokenizerFiles
{
    public const string TokenizerJson = "tokenizer.json";
    public const string TokenizerConfig = "tokenizer_config.json";

    /// <summary>Token → id over model.vocab and added_tokens (added tokens win), and the vocabulary size:
    /// 1 + the largest id of either. One parse of tokenizer.json (they run to 10 MB).</summary>
    public static (IReadOnlyDictionary<string, int> TokenIds, int VocabularySize) Read(string directory)
    {
        var (vocab, added) = ReadIds(directory);
        int size = 1 + vocab.Values.Concat(added.Values).DefaultIfEmpty(-1).Max();
        foreach (var (k, v) in added) vocab[k] = v;
        return (vocab, size);
    }

    /// <summary>bos/eos/pad/unk token strings of tokenizer_config.json (string or {"content": …}); absent file → empty.</summary>
    public static IReadOnlyDictionary<string, string> SpecialTokens(string directory)
    {
        var path = Path.Combine(directory, TokenizerConfig);
        var result = new Dictionary<string, string>();
        if (!File.Exists(path)) return result;
        var json = Parse(path);
        foreach (var key in new[] { "bos_token", "eos_token", "pad_token", "unk_token" })
        {
            var node = json[key];
            var text = node switch
            {
                JsonValue v when v.TryGetValue<string>(out var s) => s,
                JsonObject o => o["content"]?.GetValue<string>(),
                _ => null,
            };
            if (text is not null) result[key] = text;
        }
        return result;
    }

    private static (Dictionary<string, int> Vocab, Dictionary<string, int> Added) ReadIds(string directory)
    {
        var path = Path.Combine(directory, TokenizerJson);
        if (!File.Exists(path)) throw new UserError($"'{directory}' has no {TokenizerJson}.");
        var json = Parse(path);
        try
        {
            var vocab = new Dictionary<string, int>();
            switch (json["model"]?["vocab"])
            {
                case JsonObject o:   // BPE / WordPiece: token → id
                    foreach (var (k, v) in o) vocab[k] = v!.GetValue<int>();
                    break;
                case JsonArray a:    // Unigram: [token, score] at index = id
                    for (int i = 0; i < a.Count; i++) vocab[a[i]![0]!.GetValue<string>()] = i;
                    break;
                default:
                    throw new UserError($"'{path}' has no model.vocab.");
            }
            var added = new Dictionary<string, int>();
            if (json["added_tokens"] is JsonArray tokens)
                foreach (var t in tokens)
                    added[t!["content"]!.GetValue<string>()] = t["id"]!.GetValue<int>();
            return (vocab, added);
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or FormatException)
        {
            throw new UserError($"'{path}' has a malformed vocabulary: {e.Message}");
        }
    }

    private static JsonObject Parse(string path)
    {
        try { return JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new JsonException("empty"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new UserError($"'{path}' is not a JSON object: {e.Message}");
        }
    }
}

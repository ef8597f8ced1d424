using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;
using NativeTokenizer = Tokenizers.DotNet.Tokenizer;
using NativeTokenizerException = Tokenizers.DotNet.TokenizerException;

namespace EmaPg.Tokenization;

/// <summary>
/// A Hugging Face model directory's tokenizer: tokenizer.json (byte-level BPE, as in Qwen2/2.5/3 and Llama 3)
/// run by Hugging Face's own Rust `tokenizers` library (through Tokenizers.DotNet), so that encoding equals HF's
/// id for id; tokenizer_config.json for eos/pad/bos and the chat template; generation_config.json for the eos ids
/// where present. Thread-safe. Dispose to free the native tokenizer.
/// </summary>
public sealed class HfTokenizer : ITextTokenizer, IDisposable
{
    private readonly NativeTokenizer _withSpecial;
    // The native binding always encodes with add_special_tokens=true, so add_special_tokens=false uses a second
    // native tokenizer without the post-processor; null where the post-processor adds nothing (ByteLevel or none).
    private readonly NativeTokenizer? _withoutSpecial;
    private readonly Dictionary<int, string> _specialContent;

    public int VocabSize { get; }
    public IReadOnlyList<int> EosTokenIds { get; }
    public int? PadTokenId { get; }
    public int? BosTokenId { get; }
    public bool AddsBosToken { get; }
    /// <summary>The model's chat template (tokenizer_config.json's chat_template or chat_template.jinja), or null where it has none.</summary>
    public ChatTemplate? ChatTemplate { get; }
    /// <summary>Ids of the added tokens marked special (the ones <c>skipSpecialTokens</c> drops).</summary>
    public IReadOnlyCollection<int> SpecialTokenIds => _specialContent.Keys;

    private HfTokenizer(NativeTokenizer withSpecial, NativeTokenizer? withoutSpecial, Dictionary<int, string> specialContent, int vocabSize,
        IReadOnlyList<int> eos, int? pad, int? bos, ChatTemplate? template)
    {
        (_withSpecial, _withoutSpecial, _specialContent) = (withSpecial, withoutSpecial, specialContent);
        (VocabSize, EosTokenIds, PadTokenId, BosTokenId, ChatTemplate) = (vocabSize, eos, pad, bos, template);
        AddsBosToken = bos is { } b && Encode("", addSpecialTokens: true) is [var first, ..] && first == b;
    }

    /// <summary>Loads DIR/tokenizer.json, DIR/tokenizer_config.json and, if present, DIR/generation_config.json and DIR/chat_template.jinja.</summary>
    public static HfTokenizer Load(string modelDir)
    {
        if (!Directory.Exists(modelDir)) throw new UserError($"--model: directory '{modelDir}' does not exist.");
        string tokPath = Path.Combine(modelDir, "tokenizer.json");
        string cfgPath = Path.Combine(modelDir, "tokenizer_config.json");
        foreach (var p in new[] { tokPath, cfgPath })
            if (!File.Exists(p)) throw new UserError($"--model: '{p}' is missing (a Hugging Face tokenizer needs tokenizer.json and tokenizer_config.json).");

        var vocab = ReadVocabulary(tokPath);
        var idOf = vocab.IdOf;

        var cfg = ReadJson(cfgPath);
        int? TokenId(string key)
        {
            // A token is a string, or (older files) an AddedToken object {"content": ...}; null means none.
            var node = cfg[key];
            string? content = node switch { null => null, JsonValue v when v.GetValueKind() == JsonValueKind.Null => null, JsonValue v => v.GetValue<string>(), JsonObject o => o["content"]?.GetValue<string>(), _ => null };
            if (content is null) return null;
            return idOf.TryGetValue(content, out int id) ? id : throw new UserError($"{cfgPath}: {key} '{content}' is not a token of tokenizer.json.");
        }
        int? bos = TokenId("bos_token"), pad = TokenId("pad_token"), eos = TokenId("eos_token");
        var eosIds = ReadGenerationEos(Path.Combine(modelDir, "generation_config.json")) ?? (eos is { } e ? [e] : []);
        var template = ReadChatTemplate(modelDir, cfg, cfgPath) is { } t ? ChatTemplate.Recognise(t.Text, t.Source, BosTokenText(cfg)) : null;

        var (withSpecial, withoutSpecial) = LoadNatives(tokPath, vocab.PostProcessorType);
        return new HfTokenizer(withSpecial, withoutSpecial, vocab.Special, vocab.Size, eosIds, pad, bos, template);
    }

    /// <summary>What the loader reads itself from tokenizer.json: token → id (added tokens win), the special added tokens, the vocabulary size.</summary>
    private sealed record Vocabulary(Dictionary<string, int> IdOf, Dictionary<int, string> Special, int Size, string? PostProcessorType);

    private static Vocabulary ReadVocabulary(string tokPath)
    {
        var idOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var special = new Dictionary<int, string>();
        var ids = new HashSet<int>();
        using var tok = ReadDocument(tokPath);
        var root = tok.RootElement;
        RequireByteLevelBpe(root, tokPath);
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray())
            {
                int id = a.GetProperty("id").GetInt32();
                string content = a.GetProperty("content").GetString()!;
                idOf[content] = id;
                ids.Add(id);
                if (a.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True) special[id] = content;
            }
        foreach (var kv in root.GetProperty("model").GetProperty("vocab").EnumerateObject())
        {
            int id = kv.Value.GetInt32();
            ids.Add(id);
            idOf.TryAdd(kv.Name, id);
        }
        string? postType = root.TryGetProperty("post_processor", out var post) && post.ValueKind == JsonValueKind.Object ? post.GetProperty("type").GetString() : null;
        return new Vocabulary(idOf, special, ids.Count, postType);
    }

    /// <summary>The native tokenizer, and one without the post-processor where that adds tokens (for add_special_tokens=false).</summary>
    private static (NativeTokenizer WithSpecial, NativeTokenizer? WithoutSpecial) LoadNatives(string tokPath, string? postProcessorType)
    {
        var withSpecial = LoadNative(tokPath);
        if (postProcessorType is null or "ByteLevel") return (withSpecial, null);   // ByteLevel post-processing only moves offsets
        var tok = ReadJson(tokPath);
        tok["post_processor"] = null;
        string tmp = Path.Combine(Path.GetTempPath(), $"emapg-tokenizer-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(tmp, tok.ToJsonString());
            return (withSpecial, LoadNative(tmp));
        }
        catch
        {
            withSpecial.Dispose();
            throw;
        }
        finally { File.Delete(tmp); }
    }

    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        var native = addSpecialTokens ? _withSpecial : _withoutSpecial ?? _withSpecial;
        uint[] ids;
        try { ids = native.Encode(text); }
        catch (NativeTokenizerException e) { throw new UserError($"text cannot be tokenized ({e.Message}); it must be valid UTF-16 (no unpaired surrogates)."); }
        var result = new int[ids.Length];
        for (int i = 0; i < ids.Length; i++) result[i] = checked((int)ids[i]);
        return result;
    }

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
    {
        // The native decode always skips special tokens; without skipping, the runs between special tokens are
        // decoded natively and each special token adds its content as HF's ByteLevel decoder maps it. This equals
        // HF's one-pass decode because a special token starting with an ASCII character (all of Qwen's and Llama's)
        // ends any incomplete UTF-8 sequence before it in both.
        if (skipSpecialTokens) return DecodeNative(ids, 0, ids.Count);
        var sb = new StringBuilder();
        int start = 0;
        for (int i = 0; i <= ids.Count; i++)
        {
            if (i < ids.Count && !_specialContent.ContainsKey(ids[i])) continue;
            if (i > start) sb.Append(DecodeNative(ids, start, i));
            if (i < ids.Count) sb.Append(ByteLevel.DecodeToken(_specialContent[ids[i]]));
            start = i + 1;
        }
        return sb.ToString();
    }

    private string DecodeNative(IReadOnlyList<int> ids, int from, int to)
    {
        var u = new uint[to - from];
        for (int i = from; i < to; i++)
            u[i - from] = ids[i] >= 0 ? (uint)ids[i] : throw new ArgumentOutOfRangeException(nameof(ids), $"token id {ids[i]} is negative.");
        return _withSpecial.Decode(u);
    }

    public void Dispose()
    {
        _withSpecial.Dispose();
        _withoutSpecial?.Dispose();
    }

    private static NativeTokenizer LoadNative(string path)
    {
        try { return new NativeTokenizer(path); }
        catch (NativeTokenizerException e) { throw new UserError($"{path}: Hugging Face tokenizers cannot load it: {e.Message}"); }
    }

    private static JsonNode ReadJson(string path)
    {
        try { return JsonNode.Parse(File.ReadAllText(path)) ?? throw new UserError($"{path}: empty JSON."); }
        catch (JsonException e) { throw new UserError($"{path}: malformed JSON ({e.Message})."); }
    }

    private static JsonDocument ReadDocument(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new UserError($"{path}: malformed JSON ({e.Message})."); }
    }

    private static void RequireByteLevelBpe(JsonElement tok, string path)
    {
        static string? TypeOf(JsonElement e, string key) =>
            e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Object && v.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        string? model = TypeOf(tok, "model"), decoder = TypeOf(tok, "decoder");
        if (model != "BPE" || decoder != "ByteLevel" || tok.GetProperty("model").TryGetProperty("vocab", out var v) is false || v.ValueKind != JsonValueKind.Object)
            throw new UserError($"{path}: only byte-level BPE tokenizers (model BPE, decoder ByteLevel: Qwen2/2.5/3, Llama 3) are supported; this one has model '{model ?? "none"}', decoder '{decoder ?? "none"}'.");
    }

    private static int[]? ReadGenerationEos(string path)
    {
        if (!File.Exists(path)) return null;
        var eos = ReadJson(path)["eos_token_id"];
        try
        {
            return eos switch
            {
                null => null,
                JsonArray a => a.Select(x => x!.GetValue<int>()).ToArray(),
                JsonValue v when v.GetValueKind() == JsonValueKind.Null => null,
                JsonValue v => [v.GetValue<int>()],
                _ => throw new FormatException(),
            };
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw new UserError($"{path}: eos_token_id must be an integer or a list of integers, got {eos!.ToJsonString()}.");
        }
    }

    private static string? BosTokenText(JsonNode cfg) => cfg["bos_token"] switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonObject o => o["content"]?.GetValue<string>(),
        _ => null,
    };

    private static (string Text, string Source)? ReadChatTemplate(string modelDir, JsonNode cfg, string cfgPath)
    {
        // transformers saves the template as chat_template.jinja (newer) or in tokenizer_config.json (older).
        string jinja = Path.Combine(modelDir, "chat_template.jinja");
        if (File.Exists(jinja)) return (File.ReadAllText(jinja), jinja);
        return cfg["chat_template"] switch
        {
            null => null,
            JsonValue v when v.GetValueKind() == JsonValueKind.String => (v.GetValue<string>(), cfgPath),
            JsonArray a => a.OfType<JsonObject>().FirstOrDefault(o => o["name"]?.GetValue<string>() == "default")?["template"]?.GetValue<string>() is { } t
                ? (t, cfgPath + " (chat_template 'default')")
                : throw new UserError($"{cfgPath}: chat_template is a list without a 'default' entry."),
            _ => throw new UserError($"{cfgPath}: chat_template must be a string."),
        };
    }
}

/// <summary>GPT-2's byte ↔ printable-character table, used by HF's ByteLevel decoder.</summary>
internal static class ByteLevel
{
    private static readonly Dictionary<char, byte> CharToByte = Build();

    private static Dictionary<char, byte> Build()
    {
        var map = new Dictionary<char, byte>();
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[(char)(printable ? b : 256 + n++)] = (byte)b;
        }
        return map;
    }

    /// <summary>A token's text as HF's ByteLevel decoder gives it: its characters mapped to bytes, or its UTF-8 bytes where one character is outside the table.</summary>
    public static string DecodeToken(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
            if (!CharToByte.TryGetValue(token[i], out bytes[i])) return token;
        return Encoding.UTF8.GetString(bytes);
    }
}

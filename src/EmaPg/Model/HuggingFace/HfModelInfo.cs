using System.Text.Json.Nodes;

namespace EmaPg.Model.HuggingFace;

/// <summary>
/// A special token as the folder declares it: the ids generation uses (generation_config.json, else
/// config.json; eos may be several) and the string tokenizer_config.json names, with its id in tokenizer.json.
/// </summary>
public sealed record SpecialToken(string Role, IReadOnlyList<int> Ids, string? Text, int? TextId);

/// <summary>What <c>emapg model info</c> reports; read from the folder's JSON files and safetensors headers without loading weights.</summary>
public sealed record HfModelInfo(
    string Directory,
    string Architecture,
    string ModelType,
    [property: System.Text.Json.Serialization.JsonPropertyName("dtype")] string DType,
    long Parameters,
    long Bytes,
    IReadOnlyList<string> Files,
    int VocabSize,
    int? TokenizerVocabSize,
    int HiddenSize,
    int IntermediateSize,
    int NumHiddenLayers,
    int NumAttentionHeads,
    int NumKeyValueHeads,
    int HeadDim,
    int MaxPositionEmbeddings,
    bool TieWordEmbeddings,
    double RopeTheta,
    string RopeScaling,
    IReadOnlyList<SpecialToken> SpecialTokens)
{
    public static HfModelInfo Read(string directory)
    {
        var config = HfConfig.Load(Path.Combine(directory, HfCheckpoint.ConfigFile));
        var entries = HfCheckpoint.ReadTensorEntries(directory);
        var m = config.Model;
        bool hasTokenizer = File.Exists(Path.Combine(directory, TokenizerFiles.TokenizerJson));
        var (tokenIds, tokenizerVocab) = hasTokenizer ? TokenizerFiles.Read(directory) : (null, 0);
        var texts = TokenizerFiles.SpecialTokens(directory);
        var generation = ReadGenerationConfig(directory);
        var special = new List<SpecialToken>();
        foreach (var role in new[] { "bos", "eos", "pad" })
        {
            var ids = Ids(generation?[$"{role}_token_id"]) ?? Ids(config.Json[$"{role}_token_id"]) ?? [];
            texts.TryGetValue($"{role}_token", out var text);
            int? textId = text is not null && tokenIds is not null && tokenIds.TryGetValue(text, out var id) ? id : null;
            if (ids.Count > 0 || text is not null) special.Add(new SpecialToken(role, ids, text, textId));
        }
        return new HfModelInfo(
            directory,
            config.Json["architectures"] is JsonArray { Count: > 0 } a ? a[0]!.GetValue<string>() : Architectures.Get(m.Architecture).HfClass,
            m.Architecture,
            HfConfig.DTypeName(config.DType),
            entries.Values.Sum(e => e.Shape.Aggregate(1L, (x, y) => x * y)),
            entries.Values.Sum(e => e.ByteLength),
            entries.Values.Select(e => Path.GetFileName(e.File)).Distinct().Order(StringComparer.Ordinal).ToList(),
            m.VocabSize,
            hasTokenizer ? tokenizerVocab : null,
            m.HiddenSize, m.IntermediateSize, m.NumHiddenLayers, m.NumAttentionHeads, m.NumKeyValueHeads, m.HeadDim,
            m.MaxPositionEmbeddings, m.TieWordEmbeddings, m.RopeTheta,
            m.RopeScaling is null ? "none" : "llama3",
            special);
    }

    /// <summary>Token ids generation stops at: eos_token_id of generation_config.json, else of config.json (an int or a list).</summary>
    public static IReadOnlyList<int> StopTokenIds(string directory, HfConfig config) =>
        Ids(ReadGenerationConfig(directory)?["eos_token_id"]) ?? Ids(config.Json["eos_token_id"]) ?? [];

    private static JsonObject? ReadGenerationConfig(string directory)
    {
        var path = Path.Combine(directory, "generation_config.json");
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (System.Text.Json.JsonException e) { throw new Common.UserError($"'{path}' is not valid JSON: {e.Message}"); }
    }

    private static List<int>? Ids(JsonNode? node) => node switch
    {
        JsonArray a => a.Select(x => x!.GetValue<int>()).ToList(),
        JsonValue v when v.TryGetValue<int>(out var i) => [i],
        _ => null,
    };
}

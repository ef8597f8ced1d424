using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;
using static TorchSharp.torch;

namespace EmaPg.Model.HuggingFace;

/// <summary>
/// A Hugging Face <c>config.json</c>: the JSON object as written (kept whole so every key the library does
/// not interpret survives a load → save round trip), normalised to the transformers 4.x key style
/// (<c>torch_dtype</c>, <c>rope_theta</c> + <c>rope_scaling</c>) that transformers 4.x, 5.x and vLLM all
/// read, and the <see cref="ModelConfig"/> it describes. transformers 5 writes <c>dtype</c> and
/// <c>rope_parameters</c> instead; both styles are accepted.
/// </summary>
public sealed class HfConfig
{
    private HfConfig(JsonObject json, ModelConfig model, ScalarType dtype)
    {
        Json = json;
        Model = model;
        DType = dtype;
    }

    /// <summary>The config in 4.x key style; written back verbatim (with <c>torch_dtype</c> updated) on save.</summary>
    public JsonObject Json { get; }
    public ModelConfig Model { get; }
    /// <summary>The checkpoint's <c>torch_dtype</c> (float32 when absent, as in transformers).</summary>
    public ScalarType DType { get; }

    /// <summary>The names accepted by <c>model init --like</c>.</summary>
    public static IReadOnlyList<string> KnownNames { get; } =
        ["qwen2.5-0.5b", "qwen2.5-1.5b", "qwen3-0.6b", "qwen3-1.7b", "llama-3.2-1b", "r1-distill-qwen-1.5b"];

    /// <summary>The config.json of a real model (as published on the Hub), embedded in the library.</summary>
    public static JsonObject Known(string name)
    {
        if (!KnownNames.Contains(name))
            throw new UserError($"--like must be one of {string.Join(", ", KnownNames)}, got '{name}'.");
        using var s = Assembly.GetExecutingAssembly().GetManifestResourceStream($"EmaPg.model-configs.{name}.json")
            ?? throw new InvalidOperationException($"embedded config {name} is missing");
        return JsonNode.Parse(s)!.AsObject();
    }

    public static HfConfig Load(string path)
    {
        if (!File.Exists(path)) throw new UserError($"'{path}' does not exist; a model folder needs a config.json.");
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new JsonException("empty"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new UserError($"'{path}' is not a JSON object: {e.Message}");
        }
        return Parse(json, path);
    }

    /// <summary>Interprets <paramref name="json"/> (not modified; a normalised copy is kept); errors name <paramref name="source"/> and the key.</summary>
    public static HfConfig Parse(JsonObject json, string source)
    {
        var j = Normalise(json.DeepClone().AsObject(), source);
        string modelType = Str(j, "model_type", source) ?? throw new UserError($"{source}: key 'model_type' is missing.");
        var arch = Architectures.List.FirstOrDefault(a => a.Name == modelType)
            ?? throw new UserError($"{source}: model_type '{modelType}' is not supported; supported: {string.Join(", ", Architectures.List.Select(a => a.Name))}.");
        if (j["architectures"] is JsonArray classes && classes.Count > 0 && classes[0]?.GetValue<string>() != arch.HfClass)
            throw new UserError($"{source}: architectures[0] is '{classes[0]}', model_type '{modelType}' needs '{arch.HfClass}'.");
        if (Str(j, "hidden_act", source) is { } act && act != "silu")
            throw new UserError($"{source}: hidden_act '{act}' is not supported (only silu).");
        if (Bool(j, "use_sliding_window", source) == true)
            throw new UserError($"{source}: use_sliding_window is true; sliding-window attention is not supported.");
        if (j["layer_types"] is JsonArray layerTypes && layerTypes.Any(t => t?.GetValue<string>() != "full_attention"))
            throw new UserError($"{source}: layer_types contains a layer other than full_attention; sliding-window attention is not supported.");
        if (j["quantization_config"] is not null)
            throw new UserError($"{source}: quantization_config is set; quantized checkpoints are not supported.");

        var model = new ModelConfig
        {
            ModelType = modelType,
            VocabSize = Int(j, "vocab_size", source) ?? throw Missing(source, "vocab_size"),
            HiddenSize = Int(j, "hidden_size", source) ?? throw Missing(source, "hidden_size"),
            IntermediateSize = Int(j, "intermediate_size", source) ?? throw Missing(source, "intermediate_size"),
            NumHiddenLayers = Int(j, "num_hidden_layers", source) ?? throw Missing(source, "num_hidden_layers"),
            NumAttentionHeads = Int(j, "num_attention_heads", source) ?? throw Missing(source, "num_attention_heads"),
            NumKeyValueHeads = Int(j, "num_key_value_heads", source) ?? Int(j, "num_attention_heads", source)!.Value,
            ExplicitHeadDim = Int(j, "head_dim", source) ?? arch.DefaultHeadDim,
            RopeTheta = Num(j, "rope_theta", source) ?? 10000.0,
            RmsNormEps = Num(j, "rms_norm_eps", source) ?? 1e-6,
            TieWordEmbeddings = Bool(j, "tie_word_embeddings", source) ?? false,
            MaxPositionEmbeddings = Int(j, "max_position_embeddings", source) ?? throw Missing(source, "max_position_embeddings"),
            InitializerRange = Num(j, "initializer_range", source) ?? 0.02,
            AttentionBias = Bool(j, "attention_bias", source),
            MlpBias = Bool(j, "mlp_bias", source),
            RopeScaling = ParseRopeScaling(j["rope_scaling"], source),
        };
        try { model.Validate(); }
        catch (UserError e) { throw new UserError($"{source}: {e.Message}"); }
        if (modelType != "llama" && model.MlpBias == true)
            throw new UserError($"{source}: mlp_bias is only defined for llama.");
        return new HfConfig(j, model, ParseDType(j, source));
    }

    /// <summary>
    /// The config.json of a model built from a <see cref="ModelConfig"/> (not loaded from a folder), so that it can be saved as a
    /// Hugging Face folder: transformers' 4.x keys, head_dim always explicit, and the tokenizer's special ids.
    /// </summary>
    public static HfConfig FromModel(ModelConfig model, int? bosTokenId, IReadOnlyList<int> eosTokenIds, int? padTokenId)
    {
        model.Validate();
        var arch = Architectures.Get(model.Architecture);
        var j = new JsonObject
        {
            ["architectures"] = new JsonArray(arch.HfClass),
            ["model_type"] = arch.Name,
            ["vocab_size"] = model.VocabSize,
            ["hidden_size"] = model.HiddenSize,
            ["intermediate_size"] = model.IntermediateSize,
            ["num_hidden_layers"] = model.NumHiddenLayers,
            ["num_attention_heads"] = model.NumAttentionHeads,
            ["num_key_value_heads"] = model.NumKeyValueHeads,
            ["head_dim"] = model.HeadDim,
            ["hidden_act"] = "silu",
            ["rope_theta"] = model.RopeTheta,
            ["rms_norm_eps"] = model.RmsNormEps,
            ["tie_word_embeddings"] = model.TieWordEmbeddings,
            ["max_position_embeddings"] = model.MaxPositionEmbeddings,
            ["initializer_range"] = model.InitializerRange,
            ["torch_dtype"] = "float32",
        };
        var f = model.Features;
        if (arch.Name != "qwen2") j["attention_bias"] = f.QkvBias;
        if (arch.Name == "llama") j["mlp_bias"] = f.MlpBias;
        if (bosTokenId is { } bos) j["bos_token_id"] = bos;
        j["eos_token_id"] = eosTokenIds.Count == 1 ? JsonValue.Create(eosTokenIds[0]) : new JsonArray([.. eosTokenIds.Select(e => (JsonNode)JsonValue.Create(e))]);
        if (padTokenId is { } pad) j["pad_token_id"] = pad;
        return Parse(j, $"the {arch.Name} model built from the training config");
    }

    /// <summary>
    /// Applies <c>--set key=value</c> overrides to a config's JSON: value parsed as JSON when it is
    /// valid JSON (numbers, true/false, null, objects), otherwise taken as a string; <c>a.b=v</c> sets
    /// a key inside an object.
    /// </summary>
    public static JsonObject WithOverrides(JsonObject json, IEnumerable<string> assignments)
    {
        var j = json.DeepClone().AsObject();
        foreach (var a in assignments)
        {
            int eq = a.IndexOf('=');
            if (eq <= 0) throw new UserError($"--set expects key=value, got '{a}'.");
            var path = a[..eq].Split('.');
            var raw = a[(eq + 1)..];
            JsonNode? value;
            try { value = JsonNode.Parse(raw); }
            catch (JsonException) { value = JsonValue.Create(raw); }
            var target = j;
            foreach (var part in path[..^1])
                target = target[part] as JsonObject ?? throw new UserError($"--set {a}: '{part}' is not an object in config.json.");
            if (path[^1] == "dtype" || path[^1] == "torch_dtype")
                throw new UserError("--set cannot change the dtype; use --dtype.");
            target[path[^1]] = value;
        }
        return j;
    }

    /// <summary>The JSON to write for a checkpoint stored in <paramref name="dtype"/>.</summary>
    public JsonObject ToJson(ScalarType dtype)
    {
        var j = Json.DeepClone().AsObject();
        j["torch_dtype"] = DTypeName(dtype);
        return j;
    }

    public static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        _ => throw new UserError($"dtype {t} cannot be stored; use float32, bfloat16 or float16."),
    };

    /// <summary>Parses a dtype name as used by config.json and <c>--dtype</c> (f32/bf16/f16 too).</summary>
    public static ScalarType ParseDTypeName(string name, string what) => name switch
    {
        "float32" or "f32" or "fp32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "f16" or "fp16" => ScalarType.Float16,
        _ => throw new UserError($"{what} must be one of float32 (f32), bfloat16 (bf16), float16 (f16), got '{name}'."),
    };

    private static ScalarType ParseDType(JsonObject j, string source)
    {
        var name = Str(j, "torch_dtype", source);
        return name is null ? ScalarType.Float32 : ParseDTypeName(name, $"{source}: torch_dtype");
    }

    /// <summary>transformers 5 → 4.x key style: dtype → torch_dtype, rope_parameters → rope_theta + rope_scaling.</summary>
    private static JsonObject Normalise(JsonObject j, string source)
    {
        if (j["dtype"] is { } dt)
        {
            j.Remove("dtype");
            j["torch_dtype"] ??= dt.DeepClone();
        }
        if (j["rope_parameters"] is JsonNode rp)
        {
            j.Remove("rope_parameters");
            if (rp is not JsonObject p) throw new UserError($"{source}: rope_parameters must be an object.");
            if (p["rope_theta"] is { } theta) j["rope_theta"] = theta.DeepClone();
            var scaling = p.DeepClone().AsObject();
            scaling.Remove("rope_theta");
            string? type = scaling["rope_type"]?.GetValue<string>() ?? scaling["type"]?.GetValue<string>();
            j["rope_scaling"] = type is null or "default" ? null : scaling;
        }
        return j;
    }

    private static Llama3RopeScaling? ParseRopeScaling(JsonNode? node, string source)
    {
        if (node is null) return null;
        if (node is not JsonObject s) throw new UserError($"{source}: rope_scaling must be an object or null.");
        string? type = Str(s, "rope_type", source) ?? Str(s, "type", source);
        if (type is null or "default") return null;
        if (type != "llama3")
            throw new UserError($"{source}: rope_scaling.rope_type '{type}' is not supported (supported: default, llama3).");
        var r = new Llama3RopeScaling
        {
            Factor = Num(s, "factor", source) ?? throw Missing(source, "rope_scaling.factor"),
            LowFreqFactor = Num(s, "low_freq_factor", source) ?? throw Missing(source, "rope_scaling.low_freq_factor"),
            HighFreqFactor = Num(s, "high_freq_factor", source) ?? throw Missing(source, "rope_scaling.high_freq_factor"),
            OriginalMaxPositionEmbeddings = Int(s, "original_max_position_embeddings", source) ?? throw Missing(source, "rope_scaling.original_max_position_embeddings"),
        };
        try { return r.Validate(); }
        catch (UserError e) { throw new UserError($"{source}: {e.Message}"); }
    }

    private static UserError Missing(string source, string key) => new($"{source}: key '{key}' is missing.");

    private static T? Get<T>(JsonObject j, string key, string source, Func<JsonValue, T> read) where T : struct
    {
        if (j[key] is not JsonNode n) return null;
        try { return read(n.AsValue()); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or OverflowException)
        {
            throw new UserError($"{source}: key '{key}' has value {n.ToJsonString()} of the wrong type ({typeof(T).Name} expected).");
        }
    }

    private static int? Int(JsonObject j, string key, string source) => Get(j, key, source, v =>
    {
        double d = Number(v);
        return d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue ? (int)d : throw new FormatException();
    });

    private static double? Num(JsonObject j, string key, string source) => Get(j, key, source, Number);

    // Via the JSON text: a JsonValue built from a CLR int (not parsed) refuses GetValue<double>().
    private static double Number(JsonValue v) => v.GetValueKind() == JsonValueKind.Number
        ? double.Parse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture)
        : throw new FormatException();
    private static bool? Bool(JsonObject j, string key, string source) => Get(j, key, source, v => v.GetValue<bool>());

    private static string? Str(JsonObject j, string key, string source)
    {
        if (j[key] is not JsonNode n) return null;
        try { return n.GetValue<string>(); }
        catch (InvalidOperationException) { throw new UserError($"{source}: key '{key}' must be a string, got {n.ToJsonString()}."); }
    }
}

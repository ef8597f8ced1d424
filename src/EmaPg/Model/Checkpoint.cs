using System.Text.Json.Nodes;
using EmaPg.Common;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>
/// A model in the library's one checksummed tensor format (<see cref="TensorFile"/>, kind "model"): the model
/// config and free-form metadata in the header, every tensor of <c>named_parameters()</c> by name. Carrying the
/// config means a checkpoint alone rebuilds its model; naming every tensor means a mismatched file fails loudly
/// instead of loading silently shifted weights (TorchSharp's own <c>save</c> is positional).
/// </summary>
public static class Checkpoint
{
    public const string Kind = "model";

    public static void Save(string path, CausalLM model, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var meta = new JsonObject
        {
            ["config"] = JsonNode.Parse(model.Config.ToJson()),
            ["metadata"] = new JsonObject((metadata ?? new Dictionary<string, string>()).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
        };
        TensorFile.Write(full, Kind, meta, model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)));
    }

    /// <summary>Header of a checkpoint (verified) without loading tensors.</summary>
    public static (ModelConfig Config, IReadOnlyDictionary<string, string> Metadata) ReadHeader(string path)
    {
        using var r = TensorFile.Open(path, Kind);
        return ParseHeader(r);
    }

    /// <summary>Rebuilds the model stored at <paramref name="path"/> on <paramref name="device"/>.</summary>
    public static CausalLM Load(string path, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        var (config, _) = ReadHeader(path);
        var model = Architectures.Create(config, device, dtype);
        try { LoadInto(model, path); }
        catch { model.Dispose(); throw; }
        return model;
    }

    /// <summary>Overwrites the parameters of <paramref name="model"/>; names and shapes must match exactly.</summary>
    public static void LoadInto(CausalLM model, string path)
    {
        using var r = TensorFile.Open(path, Kind);
        var (config, _) = ParseHeader(r);
        if (config != model.Config)
            throw new UserError($"checkpoint '{path}' holds a model with config {config.ToJson()}, expected {model.Config.ToJson()}.");
        var target = model.named_parameters().ToDictionary(n => n.name, n => n.parameter);
        var names = r.Tensors.Keys.ToHashSet();
        if (!names.SetEquals(target.Keys))
            throw new UserError($"checkpoint '{path}' parameter names differ from the model's: missing [{string.Join(", ", target.Keys.Except(names))}], unexpected [{string.Join(", ", names.Except(target.Keys))}].");
        foreach (var (name, p) in target) r.ReadInto(name, p);
    }

    private static (ModelConfig, IReadOnlyDictionary<string, string>) ParseHeader(TensorFile.Reader r)
    {
        try
        {
            var config = ModelConfig.FromJson(r.Metadata["config"]!.ToJsonString());
            var meta = r.Metadata["metadata"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>());
            return (config, meta);
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or System.Text.Json.JsonException)
        {
            throw new CorruptFileError(r.Path, $"model header without a valid config ({e.Message})");
        }
    }
}

using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>
/// Own, self-describing parameter file: magic, a JSON header (model config, free-form metadata, and
/// name/dtype/shape of every tensor in <c>named_parameters()</c> order), then the raw little-endian
/// bytes. Carrying the config means a checkpoint alone rebuilds its model; naming every tensor means
/// a mismatched file fails loudly instead of loading silently shifted weights (TorchSharp's own
/// <c>save</c> is positional). Writes go to a temp file renamed over the target, so a crash never
/// leaves a half-written checkpoint behind.
/// </summary>
public static class Checkpoint
{
    private static readonly byte[] Magic = "EMAPGCK1"u8.ToArray();

    public static void Save(string path, CausalLM model, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = $"{full}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        var named = model.named_parameters().ToList();
        var header = new JsonObject
        {
            ["config"] = JsonNode.Parse(model.Config.ToJson()),
            ["metadata"] = new JsonObject((metadata ?? new Dictionary<string, string>()).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
            ["tensors"] = new JsonArray(named.Select(n => (JsonNode)new JsonObject
            {
                ["name"] = n.name,
                ["dtype"] = n.parameter.dtype.ToString(),
                ["shape"] = new JsonArray(n.parameter.shape.Select(d => (JsonNode)JsonValue.Create(d)).ToArray()),
            }).ToArray()),
        };
        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            using (var w = new BinaryWriter(fs))
            {
                w.Write(Magic);
                w.Write(headerBytes.Length);
                w.Write(headerBytes);
                foreach (var (_, p) in named)
                {
                    using var cpu = p.detach().cpu().contiguous();
                    w.Write(cpu.bytes);
                }
                w.Flush();
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Header of a checkpoint without loading tensors.</summary>
    public static (ModelConfig Config, IReadOnlyDictionary<string, string> Metadata) ReadHeader(string path)
    {
        using var fs = File.OpenRead(path);
        using var r = new BinaryReader(fs);
        var (config, metadata, _) = ReadHeader(r, path);
        return (config, metadata);
    }

    /// <summary>Rebuilds the model stored at <paramref name="path"/> on <paramref name="device"/>.</summary>
    public static CausalLM Load(string path, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        var (config, _) = ReadHeader(path);
        var model = Architectures.Create(config, device, dtype);
        LoadInto(model, path);
        return model;
    }

    /// <summary>Overwrites the parameters of <paramref name="model"/>; names and shapes must match exactly.</summary>
    public static void LoadInto(CausalLM model, string path)
    {
        if (!File.Exists(path)) throw new UserError($"checkpoint '{path}' does not exist.");
        using var fs = File.OpenRead(path);
        using var r = new BinaryReader(fs);
        var (config, _, tensors) = ReadHeader(r, path);
        if (config != model.Config)
            throw new UserError($"checkpoint '{path}' holds a model with config {config.ToJson()}, expected {model.Config.ToJson()}.");
        var target = model.named_parameters().ToDictionary(n => n.name, n => n.parameter);
        var names = tensors.Select(t => t.Name).ToHashSet();
        if (!names.SetEquals(target.Keys))
            throw new UserError($"checkpoint '{path}' parameter names differ from the model's: missing [{string.Join(", ", target.Keys.Except(names))}], unexpected [{string.Join(", ", names.Except(target.Keys))}].");
        using var noGrad = no_grad();
        foreach (var (name, dtype, shape) in tensors)
        {
            var p = target[name];
            if (!shape.SequenceEqual(p.shape))
                throw new UserError($"checkpoint '{path}': {name} has shape [{string.Join(", ", shape)}], model expects [{string.Join(", ", p.shape)}].");
            using var t = empty(shape, dtype: dtype);
            var bytes = r.ReadBytes(checked((int)(t.numel() * t.element_size())));
            if (bytes.Length != t.numel() * t.element_size())
                throw new UserError($"checkpoint '{path}' is truncated at {name}.");
            t.bytes = bytes;
            p.copy_(t);
        }
    }

    private static (ModelConfig, IReadOnlyDictionary<string, string>, List<(string Name, ScalarType DType, long[] Shape)>) ReadHeader(BinaryReader r, string path)
    {
        try
        {
            if (!r.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic))
                throw new UserError($"'{path}' is not an EmaPg checkpoint (bad magic).");
            int len = r.ReadInt32();
            var header = JsonNode.Parse(Encoding.UTF8.GetString(r.ReadBytes(len)))!.AsObject();
            var config = ModelConfig.FromJson(header["config"]!.ToJsonString());
            var meta = header["metadata"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>());
            var tensors = header["tensors"]!.AsArray().Select(n => (
                n!["name"]!.GetValue<string>(),
                Enum.Parse<ScalarType>(n["dtype"]!.GetValue<string>()),
                n["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray())).ToList();
            return (config, meta, tensors);
        }
        catch (Exception e) when (e is EndOfStreamException or JsonException or NullReferenceException or InvalidOperationException or ArgumentException)
        {
            throw new UserError($"checkpoint '{path}' has a corrupt header: {e.Message}");
        }
    }
}

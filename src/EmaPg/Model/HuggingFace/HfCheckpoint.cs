using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Model.HuggingFace;

/// <summary>A model loaded from a Hugging Face folder, with the config it was loaded from (needed to save it back).</summary>
public sealed class HfModel(CausalLM model, HfConfig config, string directory) : IDisposable
{
    public CausalLM Model { get; } = model;
    public HfConfig Config { get; } = config;
    public string Directory { get; } = directory;
    public void Dispose() => Model.Dispose();
}

/// <summary>What <c>emapg model init</c> takes; exactly one of <see cref="Like"/> and <see cref="ConfigFile"/>.</summary>
public sealed record ModelInitOptions
{
    /// <summary>A name of <see cref="HfConfig.KnownNames"/>.</summary>
    public string? Like { get; init; }
    public string? ConfigFile { get; init; }
    public required string TokenizerDir { get; init; }
    public required string OutDir { get; init; }
    /// <summary>bf16, f32 or f16 (long names too); null = the config's torch_dtype.</summary>
    public string? DType { get; init; }
    public long Seed { get; init; }
    /// <summary>config.json overrides, key=value (see <see cref="HfConfig.WithOverrides"/>).</summary>
    public IReadOnlyList<string> Set { get; init; } = [];
}

/// <summary>
/// Model folders as transformers' <c>save_pretrained</c> writes them: <c>config.json</c>, either
/// <c>model.safetensors</c> or <c>model-0000i-of-0000n.safetensors</c> shards with
/// <c>model.safetensors.index.json</c>, and tokenizer / generation files alongside.
/// Loading is strict: every parameter of the model must be in the files exactly once, with its shape,
/// in a floating dtype, and nothing else may be there; errors name the tensor and the file.
/// </summary>
public static class HfCheckpoint
{
    public const string ConfigFile = "config.json";
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";
    /// <summary>transformers 4.x's default <c>max_shard_size</c>.</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    /// <summary>
    /// Loads <paramref name="directory"/> into a new model on <paramref name="device"/> in
    /// <paramref name="dtype"/> (the checkpoint's <c>torch_dtype</c> when null; tensors are converted
    /// while streaming). Extra memory beyond the model is one <see cref="SafeTensors.ChunkBytes"/> buffer.
    /// </summary>
    public static HfModel Load(string directory, ScalarType? dtype = null, Device? device = null)
    {
        var config = HfConfig.Load(Path.Combine(directory, ConfigFile));
        var entries = ReadTensorEntries(directory);
        var model = Architectures.Create(config.Model, device, dtype ?? config.DType, seed: null);
        try
        {
            var parameters = model.named_parameters().ToList();
            var expected = parameters.Select(p => p.name).ToHashSet();
            foreach (var (name, entry) in entries)
            {
                if (expected.Contains(name)) continue;
                // Some tied checkpoints (e.g. Qwen3-1.7B's) also store the LM head; transformers and vLLM
                // skip it and use the embedding, and so does this loader, after checking its shape.
                if (name == "lm_head.weight" && config.Model.TieWordEmbeddings && entry.Shape.SequenceEqual([config.Model.VocabSize, config.Model.HiddenSize]))
                    continue;
                throw new UserError($"'{entry.File}': unexpected tensor '{name}' (not a parameter of this {config.Model.Architecture} model{(name == "lm_head.weight" ? $" with tie_word_embeddings {config.Model.TieWordEmbeddings.ToString().ToLowerInvariant()}" : "")}).");
            }
            foreach (var (name, _) in parameters)
                if (!entries.ContainsKey(name))
                    throw new UserError($"'{directory}': tensor '{name}' is missing (looked in {string.Join(", ", entries.Values.Select(e => Path.GetFileName(e.File)).Distinct())}).");
            foreach (var (name, p) in parameters)
                SafeTensors.ReadInto(entries[name], p);
            model.eval();
            return new HfModel(model, config, directory);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Every tensor entry of the folder by name, from <c>model.safetensors</c> or from the shards the
    /// index names; the index must list exactly the tensors its shards hold.
    /// </summary>
    public static IReadOnlyDictionary<string, SafeTensorEntry> ReadTensorEntries(string directory)
    {
        var index = Path.Combine(directory, IndexFile);
        var single = Path.Combine(directory, SingleFile);
        var result = new Dictionary<string, SafeTensorEntry>();
        if (File.Exists(index))
        {
            var weightMap = ReadWeightMap(index);
            foreach (var file in weightMap.Values.Distinct())
            {
                var path = Path.Combine(directory, file);
                if (!File.Exists(path)) throw new UserError($"'{index}' names shard '{file}', which does not exist.");
                foreach (var e in SafeTensors.ReadHeader(path))
                {
                    if (!weightMap.TryGetValue(e.Name, out var listed) || listed != file)
                        throw new UserError($"'{path}': tensor '{e.Name}' is not mapped to this file by '{index}'.");
                    if (!result.TryAdd(e.Name, e))
                        throw new UserError($"'{path}': tensor '{e.Name}' appears in more than one shard.");
                }
            }
            foreach (var (name, file) in weightMap)
                if (!result.ContainsKey(name))
                    throw new UserError($"'{index}' maps tensor '{name}' to '{file}', which does not contain it.");
        }
        else if (File.Exists(single))
        {
            foreach (var e in SafeTensors.ReadHeader(single))
                result[e.Name] = e;
        }
        else
        {
            throw new UserError($"'{directory}' holds neither {SingleFile} nor {IndexFile}.");
        }
        // transformers ignores these non-persistent RoPE buffers that old Llama checkpoints carried.
        foreach (var k in result.Keys.Where(k => k.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)).ToList())
            result.Remove(k);
        return result;
    }

    private static Dictionary<string, string> ReadWeightMap(string index)
    {
        try
        {
            var map = JsonNode.Parse(File.ReadAllText(index))!["weight_map"]!.AsObject();
            return map.ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>());
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException)
        {
            throw new UserError($"'{index}' is not a valid safetensors index (a JSON object with a weight_map of name → file): {e.Message}");
        }
    }

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="directory"/> (created; must not hold a
    /// config.json already): config.json with <c>torch_dtype</c>, the parameters in their own dtype as
    /// <c>model.safetensors</c> or, above <paramref name="maxShardBytes"/>, as shards with an index, and
    /// every other file of <paramref name="copyFilesFrom"/> (tokenizer, generation config). Without a
    /// generation_config.json there, one is written from the config's bos/eos ids.
    /// </summary>
    public static void Save(CausalLM model, HfConfig config, string directory, string? copyFilesFrom = null, long maxShardBytes = DefaultMaxShardBytes)
    {
        if (config.Model != model.Config)
            throw new ArgumentException("Save needs the HfConfig the model was built from.");
        if (maxShardBytes < 1) throw new UserError($"max shard size must be ≥ 1 byte, got {maxShardBytes}.");
        if (File.Exists(Path.Combine(directory, ConfigFile)))
            throw new UserError($"'{directory}' already holds a model (config.json); choose an empty or new folder.");
        System.IO.Directory.CreateDirectory(directory);

        var tensors = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();
        var shards = new List<List<(string Name, Tensor Tensor)>> { new() };
        long shardBytes = 0, totalBytes = 0;
        foreach (var t in tensors)
        {
            long bytes = t.Item2.numel() * t.Item2.element_size();
            if (shards[^1].Count > 0 && shardBytes + bytes > maxShardBytes)
            {
                shards.Add([]);
                shardBytes = 0;
            }
            shards[^1].Add(t);
            shardBytes += bytes;
            totalBytes += bytes;
        }

        if (shards.Count == 1)
        {
            SafeTensors.Write(Path.Combine(directory, SingleFile), shards[0]);
        }
        else
        {
            var weightMap = new JsonObject();
            for (int i = 0; i < shards.Count; i++)
            {
                var file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
                SafeTensors.Write(Path.Combine(directory, file), shards[i]);
                foreach (var (name, _) in shards[i]) weightMap[name] = file;
            }
            var index = new JsonObject
            {
                ["metadata"] = new JsonObject { ["total_size"] = totalBytes },
                ["weight_map"] = Sorted(weightMap),
            };
            WriteJson(Path.Combine(directory, IndexFile), index);
        }

        if (copyFilesFrom is not null)
            foreach (var file in System.IO.Directory.GetFiles(copyFilesFrom))
            {
                var name = Path.GetFileName(file);
                if (name is ConfigFile or IndexFile || name.EndsWith(".safetensors", StringComparison.Ordinal)) continue;
                File.Copy(file, Path.Combine(directory, name), overwrite: false);
            }
        var generation = Path.Combine(directory, "generation_config.json");
        if (!File.Exists(generation))
        {
            var g = new JsonObject();
            foreach (var key in new[] { "bos_token_id", "eos_token_id", "pad_token_id" })
                if (config.Json[key] is { } v) g[key] = v.DeepClone();
            WriteJson(generation, g);
        }
        WriteJson(Path.Combine(directory, ConfigFile), Sorted(config.ToJson(model.DType)));
    }

    /// <summary>
    /// A randomly initialised checkpoint with the exact config of a real model (<see cref="ModelInitOptions.Like"/>,
    /// embedded) or of a config.json file, after the <c>--set</c> overrides, in the requested dtype (the
    /// config's torch_dtype by default), with the tokenizer files copied in. The config's vocab_size
    /// must cover the tokenizer's vocabulary.
    /// </summary>
    public static HfModelInfo Init(ModelInitOptions o)
    {
        if ((o.Like is null) == (o.ConfigFile is null))
            throw new UserError("give exactly one of --like NAME and --config FILE.");
        JsonObject json;
        string source;
        if (o.Like is not null)
        {
            json = HfConfig.Known(o.Like);
            source = $"--like {o.Like}";
        }
        else
        {
            json = HfConfig.Load(o.ConfigFile!).Json;
            source = o.ConfigFile!;
        }
        var config = HfConfig.Parse(HfConfig.WithOverrides(json, o.Set), o.Set.Count == 0 ? source : $"{source} with --set {string.Join(" ", o.Set)}");
        var dtype = o.DType is null ? config.DType : HfConfig.ParseDTypeName(o.DType, "--dtype");
        if (!System.IO.Directory.Exists(o.TokenizerDir)) throw new UserError($"--tokenizer '{o.TokenizerDir}' is not a folder.");
        int tokenizerVocab = TokenizerFiles.Read(o.TokenizerDir).VocabularySize;
        if (config.Model.VocabSize < tokenizerVocab)
            throw new UserError($"vocab_size {config.Model.VocabSize} is smaller than the tokenizer's vocabulary ({tokenizerVocab} ids in '{o.TokenizerDir}').");
        using (var model = Architectures.Create(config.Model, CPU, dtype, o.Seed))
            Save(model, config, o.OutDir, copyFilesFrom: o.TokenizerDir);
        return HfModelInfo.Read(o.OutDir);
    }

    private static JsonObject Sorted(JsonObject o) =>
        new(o.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone())));

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, IndentSize = 2 };

    private static void WriteJson(string path, JsonNode node) => File.WriteAllText(path, node.ToJsonString(Indented) + "\n");
}

using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using EmaPg.Common;
using EmaPg.Model;
using EmaPg.Model.HuggingFace;
using static TorchSharp.torch;

namespace EmaPg.Tests.Model.HuggingFace;

public sealed class HfCheckpointTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "emapg-hf-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    public static TheoryData<string> Cases => new(HfFixtures.Cases);

    [Theory, MemberData(nameof(Cases))]
    public void Load_save_load_is_bit_exact_and_rewrites_the_source_bytes(string name)
    {
        var src = HfFixtures.ModelDir(name);
        var outDir = Path.Combine(_dir, name);
        using (var m = HfCheckpoint.Load(src))
            HfCheckpoint.Save(m.Model, m.Config, outDir, copyFilesFrom: src);
        using var again = HfCheckpoint.Load(outDir);
        using var first = HfCheckpoint.Load(src);
        Assert.Equal(first.Config.Model, again.Config.Model);
        Assert.Equal(first.Model.DType, again.Model.DType);
        var a = first.Model.named_parameters().ToList();
        var b = again.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(a.Count, b.Count);
        foreach (var (n, p) in a)
            Assert.True(p.bytes.SequenceEqual(b[n].bytes), $"{name}: {n} differs after load → save → load");

        // The written tensor bytes are the source file's bytes, tensor by tensor.
        var before = HfCheckpoint.ReadTensorEntries(src);
        var after = HfCheckpoint.ReadTensorEntries(outDir);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (n, e) in before)
            Assert.Equal(RawBytes(e), RawBytes(after[n]));
        Assert.True(File.Exists(Path.Combine(outDir, "generation_config.json")));
        Assert.False(File.Exists(Path.Combine(outDir, "golden.json")) && !File.Exists(Path.Combine(src, "golden.json")));
    }

    [Fact]
    public void Saved_config_uses_the_transformers_4_keys_read_by_4x_5x_and_vllm()
    {
        var src = HfFixtures.ModelDir("llama3-tied");
        using (var m = HfCheckpoint.Load(src, ScalarType.BFloat16))
            HfCheckpoint.Save(m.Model, m.Config, _dir);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "config.json")))!.AsObject();
        Assert.Equal("bfloat16", json["torch_dtype"]!.GetValue<string>());
        Assert.Null(json["dtype"]);
        Assert.Null(json["rope_parameters"]);
        Assert.Equal(500000.0, json["rope_theta"]!.GetValue<double>());
        Assert.Equal("llama3", json["rope_scaling"]!["rope_type"]!.GetValue<string>());
        Assert.Equal(8.0, json["rope_scaling"]!["factor"]!.GetValue<double>());
        Assert.Equal(64, json["rope_scaling"]!["original_max_position_embeddings"]!.GetValue<int>());
        // Both key styles describe the same model.
        Assert.Equal(HfConfig.Load(Path.Combine(src, "config.json")).Model, HfConfig.Load(Path.Combine(_dir, "config.json")).Model);
    }

    [Fact]
    public void Large_models_are_sharded_with_an_index_and_load_back_bit_exactly()
    {
        var src = HfFixtures.ModelDir("qwen2-tied");
        using var m = HfCheckpoint.Load(src);
        HfCheckpoint.Save(m.Model, m.Config, _dir, maxShardBytes: 40_000);
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, HfCheckpoint.IndexFile)))!;
        var shards = Directory.GetFiles(_dir, "model-*-of-*.safetensors");
        Assert.True(shards.Length > 2);
        Assert.False(File.Exists(Path.Combine(_dir, HfCheckpoint.SingleFile)));
        Assert.Equal(m.Model.parameters().Sum(p => p.numel() * 4), index["metadata"]!["total_size"]!.GetValue<long>());
        Assert.All(shards, s => Assert.Matches($@"model-\d{{5}}-of-{shards.Length:D5}\.safetensors$", s));
        using var again = HfCheckpoint.Load(_dir);
        foreach (var ((n, p), (_, q)) in m.Model.named_parameters().Zip(again.Model.named_parameters()))
            Assert.True(p.bytes.SequenceEqual(q.bytes), n);
    }

    [Fact]
    public void A_missing_tensor_is_an_error_naming_it()
    {
        var dir = Rewrite("qwen2-tied", list => list.RemoveAll(t => t.Name == "model.norm.weight"));
        var e = Assert.Throws<UserError>(() => HfCheckpoint.Load(dir));
        Assert.Contains("model.norm.weight", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void An_unexpected_tensor_is_an_error_naming_it_and_the_file()
    {
        var dir = Rewrite("qwen2-tied", list => list.Add(("model.layers.0.self_attn.o_proj.bias", zeros(64))));
        var e = Assert.Throws<UserError>(() => HfCheckpoint.Load(dir));
        Assert.Contains("model.layers.0.self_attn.o_proj.bias", e.Message);
        Assert.Contains(Path.Combine(dir, "model.safetensors"), e.Message);
    }

    [Fact]
    public void A_tied_checkpoint_may_also_store_the_lm_head_but_not_one_of_another_shape()
    {
        var ok = Rewrite("qwen2-tied", list => list.Add(("lm_head.weight", zeros(256, 64))), "ok");
        using (var m = HfCheckpoint.Load(ok))
            Assert.DoesNotContain(m.Model.named_parameters(), p => p.name == "lm_head.weight");
        var bad = Rewrite("qwen2-tied", list => list.Add(("lm_head.weight", zeros(255, 64))), "bad");
        var e = Assert.Throws<UserError>(() => HfCheckpoint.Load(bad));
        Assert.Contains("lm_head.weight", e.Message);
    }

    [Fact]
    public void A_wrong_shape_is_an_error_naming_the_tensor_and_the_file()
    {
        var dir = Rewrite("qwen2-tied", list =>
        {
            int i = list.FindIndex(t => t.Name == "model.layers.1.mlp.up_proj.weight");
            list[i] = (list[i].Name, zeros(64, 128));
        });
        var e = Assert.Throws<UserError>(() => HfCheckpoint.Load(dir));
        Assert.Contains("model.layers.1.mlp.up_proj.weight", e.Message);
        Assert.Contains("[64, 128]", e.Message);
        Assert.Contains(Path.Combine(dir, "model.safetensors"), e.Message);
    }

    [Fact]
    public void A_non_float_dtype_is_an_error_naming_the_tensor_and_the_file()
    {
        var dir = Copy("qwen2-tied");
        var file = Path.Combine(dir, "model.safetensors");
        RewriteHeader(file, h => h["model.norm.weight"]!["dtype"] = "I32");   // same 4 bytes per element
        var e = Assert.Throws<UserError>(() => HfCheckpoint.Load(dir));
        Assert.Contains("model.norm.weight", e.Message);
        Assert.Contains("I32", e.Message);
        Assert.Contains(file, e.Message);
    }

    [Fact]
    public void A_truncated_file_is_an_error_naming_it()
    {
        var dir = Copy("qwen2-untied-bf16");
        var file = Path.Combine(dir, "model.safetensors");
        using (var fs = new FileStream(file, FileMode.Open)) fs.SetLength(fs.Length - 100);
        var e = Assert.Throws<UserError>(() => HfCheckpoint.Load(dir));
        Assert.Contains("truncated", e.Message);
        Assert.Contains(file, e.Message);
    }

    [Theory]
    [InlineData("garbage header")]
    [InlineData("huge header length")]
    [InlineData("offsets past a shape")]
    [InlineData("empty file")]
    public void A_corrupt_file_is_an_error_naming_it(string how)
    {
        var dir = Copy("qwen2-tied");
        var file = Path.Combine(dir, "model.safetensors");
        switch (how)
        {
            case "garbage header":
                using (var fs = new FileStream(file, FileMode.Open)) { fs.Position = 8; fs.Write("#not json at all"u8); }
                break;
            case "huge header length":
                using (var fs = new FileStream(file, FileMode.Open)) { var b = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, 1UL << 40); fs.Write(b); }
                break;
            case "offsets past a shape":
                RewriteHeader(file, h => h["model.norm.weight"]!["shape"] = new JsonArray(65));
                break;
            case "empty file":
                File.WriteAllBytes(file, []);
                break;
        }
        var e = Assert.Throws<UserError>(() => HfCheckpoint.Load(dir));
        Assert.Contains(file, e.Message);
    }

    [Fact]
    public void A_shard_missing_from_disk_or_from_the_index_is_an_error()
    {
        var dir = Copy("qwen2-sharded");
        File.Delete(Path.Combine(dir, "model-00003-of-00009.safetensors"));
        var e = Assert.Throws<UserError>(() => HfCheckpoint.Load(dir));
        Assert.Contains("model-00003-of-00009.safetensors", e.Message);

        dir = Copy("qwen2-sharded", "b");
        var indexPath = Path.Combine(dir, HfCheckpoint.IndexFile);
        var index = JsonNode.Parse(File.ReadAllText(indexPath))!;
        index["weight_map"]!.AsObject().Remove("model.norm.weight");
        File.WriteAllText(indexPath, index.ToJsonString());
        e = Assert.Throws<UserError>(() => HfCheckpoint.Load(dir));
        Assert.Contains("model.norm.weight", e.Message);
    }

    [Theory]
    [InlineData("model_type", "\"gpt2\"", "model_type")]
    [InlineData("rope_parameters", "{\"rope_theta\": 10000.0, \"rope_type\": \"yarn\", \"factor\": 4.0}", "rope_scaling.rope_type")]
    [InlineData("use_sliding_window", "true", "use_sliding_window")]
    [InlineData("layer_types", "[\"sliding_attention\", \"full_attention\"]", "layer_types")]
    [InlineData("hidden_act", "\"gelu\"", "hidden_act")]
    [InlineData("vocab_size", "null", "vocab_size")]
    [InlineData("num_key_value_heads", "3", "num_key_value_heads")]
    [InlineData("quantization_config", "{\"quant_method\": \"gptq\"}", "quantization_config")]
    [InlineData("architectures", "[\"LlamaForCausalLM\"]", "architectures")]
    public void Unsupported_configs_are_errors_naming_the_key(string key, string value, string named)
    {
        var dir = Copy("qwen2-tied");
        var path = Path.Combine(dir, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json[key] = JsonNode.Parse(value);
        File.WriteAllText(path, json.ToJsonString());
        var e = Assert.Throws<UserError>(() => HfCheckpoint.Load(dir));
        Assert.Contains(named, e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Loading_streams_through_a_fixed_buffer_rather_than_whole_files()
    {
        // The loader's only buffers are one chunk of SafeTensors.ChunkBytes (plus its converted copy):
        // a checkpoint tensor larger than the chunk still loads exactly.
        Assert.True(SafeTensors.ChunkBytes <= 16 << 20);
        var dir = Path.Combine(_dir, "big");
        var config = HfConfig.Parse(JsonNode.Parse(File.ReadAllText(Path.Combine(HfFixtures.ModelDir("qwen3-tied"), "config.json")))!.AsObject()
            .Let(j => { j["vocab_size"] = 70_000; j["hidden_size"] = 64; return j; }), "test");
        using var model = Architectures.Create(config.Model, CPU, ScalarType.Float32, seed: 3);
        Assert.True(model.LmHeadWeight.numel() * 4 > SafeTensors.ChunkBytes);
        HfCheckpoint.Save(model, config, dir);
        using var again = HfCheckpoint.Load(dir);
        Assert.True(model.LmHeadWeight.bytes.SequenceEqual(again.Model.LmHeadWeight.bytes));
    }

    private string Copy(string name, string suffix = "")
    {
        var dst = Path.Combine(_dir, name + suffix);
        Directory.CreateDirectory(dst);
        foreach (var f in Directory.GetFiles(HfFixtures.ModelDir(name)))
            File.Copy(f, Path.Combine(dst, Path.GetFileName(f)));
        return dst;
    }

    /// <summary>A copy of a fixture whose model.safetensors holds the edited tensor list (float32 view of the model).</summary>
    private string Rewrite(string name, Action<List<(string Name, Tensor Tensor)>> edit, string suffix = "")
    {
        var dst = Path.Combine(_dir, name + "-edited" + suffix);
        Directory.CreateDirectory(dst);
        File.Copy(Path.Combine(HfFixtures.ModelDir(name), "config.json"), Path.Combine(dst, "config.json"));
        using var m = HfCheckpoint.Load(HfFixtures.ModelDir(name), ScalarType.Float32);
        var list = m.Model.named_parameters().Select(p => (p.name, (Tensor)p.parameter.detach())).ToList();
        edit(list);
        SafeTensors.Write(Path.Combine(dst, "model.safetensors"), list);
        return dst;
    }

    private static void RewriteHeader(string file, Action<JsonObject> edit)
    {
        var bytes = File.ReadAllBytes(file);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = JsonNode.Parse(bytes.AsSpan(8, (int)n))!.AsObject();
        edit(header);
        var h = Encoding.UTF8.GetBytes(header.ToJsonString());
        var len = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)h.Length);
        File.WriteAllBytes(file, [.. len, .. h, .. bytes.AsSpan(8 + (int)n)]);
    }

    private static byte[] RawBytes(SafeTensorEntry e)
    {
        using var fs = File.OpenRead(e.File);
        fs.Position = e.Begin;
        var b = new byte[e.ByteLength];
        fs.ReadExactly(b);
        return b;
    }
}

internal static class JsonObjectExtensions
{
    public static JsonObject Let(this JsonObject o, Func<JsonObject, JsonObject> f) => f(o);
}

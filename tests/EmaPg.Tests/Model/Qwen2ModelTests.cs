using EmaPg.Common;
using EmaPg.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Model;

public class Qwen2ModelTests
{
    private static List<string> ExpectedNames(int layers, bool tied)
    {
        var names = new List<string> { "model.embed_tokens.weight" };
        for (int i = 0; i < layers; i++)
        {
            var p = $"model.layers.{i}.";
            names.AddRange([
                p + "self_attn.q_proj.weight", p + "self_attn.q_proj.bias",
                p + "self_attn.k_proj.weight", p + "self_attn.k_proj.bias",
                p + "self_attn.v_proj.weight", p + "self_attn.v_proj.bias",
                p + "self_attn.o_proj.weight",
                p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight", p + "mlp.down_proj.weight",
                p + "input_layernorm.weight", p + "post_attention_layernorm.weight"]);
        }
        names.Add("model.norm.weight");
        if (!tied) names.Add("lm_head.weight");
        return names;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ParameterNamesAndShapesMatchHuggingFaceQwen2(bool tied)
    {
        using var model = TinyModels.Float64(tied);
        var named = model.named_parameters().ToDictionary(n => n.name, n => n.parameter.shape);
        Assert.Equal(ExpectedNames(2, tied).Order(), named.Keys.Order());
        Assert.Equal(new long[] { 16, 16 }, named["model.layers.0.self_attn.q_proj.weight"]);
        Assert.Equal(new long[] { 8, 16 }, named["model.layers.1.self_attn.k_proj.weight"]); // 2 kv heads × head dim 4
        Assert.Equal(new long[] { 8 }, named["model.layers.1.self_attn.v_proj.bias"]);
        Assert.Equal(new long[] { 24, 16 }, named["model.layers.0.mlp.gate_proj.weight"]);
        Assert.Equal(new long[] { 13, 16 }, named["model.embed_tokens.weight"]);
    }

    [Fact]
    public void ConfigValidationNamesTheField()
    {
        var e = Assert.Throws<UserError>(() => (TinyModels.Config() with { NumKeyValueHeads = 3 }).Validate());
        Assert.Contains("num_key_value_heads", e.Message);
        e = Assert.Throws<UserError>(() => (TinyModels.Config() with { HiddenSize = 18 }).Validate());
        Assert.Contains("hidden_size", e.Message);
        var json = TinyModels.Config().ToJson();
        Assert.Contains("\"num_key_value_heads\":2", json);
        Assert.Equal(TinyModels.Config(), ModelConfig.FromJson(json));
    }

    [Fact]
    public void InitIsDeterministicInTheSeed()
    {
        using var a = TinyModels.Float64(seed: 5);
        using var b = TinyModels.Float64(seed: 5);
        using var c = TinyModels.Float64(seed: 6);
        var pa = a.named_parameters().ToList();
        var pb = b.named_parameters().ToList();
        var pc = c.named_parameters().ToList();
        Assert.All(pa.Zip(pb), t => Assert.True(TinyModels.Same(t.First.parameter, t.Second.parameter)));
        Assert.False(TinyModels.Same(pa[0].parameter, pc[0].parameter));
    }

    [Theory]
    [InlineData(true, 2)]
    [InlineData(false, 4)]
    [InlineData(true, 1)]
    public void KvCacheLogitsEqualFullForwardWithLeftPadding(bool tied, int kvHeads)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var model = TinyModels.Float64(tied, kvHeads);
        // Row 0 has two pads on the left, row 1 none; the last 4 columns are "generated" tokens.
        var ids = tensor(new long[] { 0, 0, 3, 4, 5, 6, 7, 8, 9, 1, 3, 5, 7, 9, 11, 2, 4, 6 }, [2, 9]);
        var mask = tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, [2, 9]);
        var full = model.Forward(ids, mask);

        using var cache = model.CreateCache(2, 9);
        var parts = new List<Tensor> { model.Forward(ids.narrow(1, 0, 5), mask.narrow(1, 0, 5), cache) };
        for (int t = 5; t < 9; t++)
            parts.Add(model.Forward(ids.narrow(1, t, 1), mask.narrow(1, 0, t + 1), cache));
        var incremental = cat(parts, 1);
        Assert.Equal(9, cache.Length);
        // Compare real positions only (pad-query outputs are arbitrary by design).
        var real = mask.to_type(ScalarType.Bool).unsqueeze(-1).expand_as(full);
        var diff = (full - incremental).abs().masked_fill(real.logical_not(), 0).max().item<double>();
        Assert.True(diff < 1e-10, $"max diff {diff}");
    }

    [Fact]
    public void LeftPaddingDoesNotChangeARowsLogits()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var model = TinyModels.Float64();
        var alone = model.Forward(tensor(new long[] { 1, 5, 7, 2 }, [1, 4]));
        var padded = model.Forward(tensor(new long[] { 0, 0, 0, 1, 5, 7, 2 }, [1, 7]), tensor(new long[] { 0, 0, 0, 1, 1, 1, 1 }, [1, 7]));
        var diff = (alone - padded.narrow(1, 3, 4)).abs().max().item<double>();
        Assert.True(diff < 1e-12, $"max diff {diff}");
    }

    [Fact]
    public void CacheRefusesGradModeAndOverflow()
    {
        using var scope = NewDisposeScope();
        using var model = TinyModels.Float64();
        using var cache = model.CreateCache(1, 3);
        Assert.Throws<InvalidOperationException>(() => model.Forward(tensor(new long[] { 1, 2 }, [1, 2]), null, cache));
        using var noGrad = no_grad();
        model.Forward(tensor(new long[] { 1, 2 }, [1, 2]), null, cache);
        Assert.Throws<InvalidOperationException>(() => model.Forward(tensor(new long[] { 1, 2 }, [1, 2]), tensor(new long[] { 1, 1, 1, 1 }, [1, 4]), cache));
    }

    [Fact]
    public void CloneCopiesValuesIndependently()
    {
        using var model = TinyModels.Float64();
        using var copy = model.Clone();
        var p = model.named_parameters().First().parameter;
        var q = copy.named_parameters().First().parameter;
        Assert.True(TinyModels.Same(p, q));
        using (no_grad()) q.add_(1.0);
        Assert.False(TinyModels.Same(p, q));
    }
}

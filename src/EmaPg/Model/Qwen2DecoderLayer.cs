using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>Pre-norm block: x + attn(norm(x)), then h + mlp(norm(h)).</summary>
public sealed class Qwen2DecoderLayer : nn.Module
{
    private readonly Qwen2Attention _attn;
    private readonly Qwen2Mlp _mlp;
    private readonly RmsNorm _inputNorm, _postAttnNorm;

    public Qwen2DecoderLayer(ModelConfig c, int layerIndex, Device device, ScalarType dtype) : base(nameof(Qwen2DecoderLayer))
    {
        _attn = new Qwen2Attention(c, layerIndex, device, dtype);
        _mlp = new Qwen2Mlp(c, device, dtype);
        _inputNorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        _postAttnNorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        register_module("self_attn", _attn);
        register_module("mlp", _mlp);
        register_module("input_layernorm", _inputNorm);
        register_module("post_attention_layernorm", _postAttnNorm);
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor allowed, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        var h = x + _attn.Forward(_inputNorm.forward(x), cos, sin, allowed, cache);
        var y = h + _mlp.forward(_postAttnNorm.forward(h));
        return y.MoveToOuterDisposeScope();
    }
}

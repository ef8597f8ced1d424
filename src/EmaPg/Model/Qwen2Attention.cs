using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>
/// Grouped-query self-attention of the Qwen2/Qwen3/Llama family: biases on q/k/v and o_proj as the
/// architecture says (Qwen2: q/k/v only; Qwen3, Llama: all four iff attention_bias), and for Qwen3 a
/// per-head RMSNorm of queries and keys (q_norm, k_norm over head_dim) before RoPE. Each key/value head
/// serves num_attention_heads / num_key_value_heads query heads; the cache stores the un-repeated kv
/// heads so it stays small.
/// </summary>
public sealed class Qwen2Attention : nn.Module
{
    private readonly Linear _q, _k, _v, _o;
    private readonly RmsNorm? _qNorm, _kNorm;
    private readonly int _heads, _kvHeads, _headDim, _layerIndex;

    public Qwen2Attention(ModelConfig c, int layerIndex, Device device, ScalarType dtype) : base(nameof(Qwen2Attention))
    {
        _heads = c.NumAttentionHeads;
        _kvHeads = c.NumKeyValueHeads;
        _headDim = c.HeadDim;
        _layerIndex = layerIndex;
        var f = c.Features;
        _q = nn.Linear(c.HiddenSize, _heads * _headDim, hasBias: f.QkvBias, device: device, dtype: dtype);
        _k = nn.Linear(c.HiddenSize, _kvHeads * _headDim, hasBias: f.QkvBias, device: device, dtype: dtype);
        _v = nn.Linear(c.HiddenSize, _kvHeads * _headDim, hasBias: f.QkvBias, device: device, dtype: dtype);
        _o = nn.Linear(_heads * _headDim, c.HiddenSize, hasBias: f.OutputBias, device: device, dtype: dtype);
        register_module("q_proj", _q);
        register_module("k_proj", _k);
        register_module("v_proj", _v);
        register_module("o_proj", _o);
        if (f.QkNorm)
        {
            _qNorm = new RmsNorm(_headDim, c.RmsNormEps, device, dtype);
            _kNorm = new RmsNorm(_headDim, c.RmsNormEps, device, dtype);
            register_module("q_norm", _qNorm);
            register_module("k_norm", _kNorm);
        }
    }

    /// <param name="x">[B,T,hidden]</param>
    /// <param name="cos">rotary cos [B,1,T,D]</param>
    /// <param name="sin">rotary sin [B,1,T,D]</param>
    /// <param name="allowed">[B,1,T,S] boolean, true where a query may attend to a key</param>
    /// <param name="cache">when given, keys/values are appended and attention covers past + new</param>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor allowed, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = _q.forward(x).view(b, t, _heads, _headDim);
        var k = _k.forward(x).view(b, t, _kvHeads, _headDim);
        if (_qNorm is not null) q = _qNorm.forward(q);
        if (_kNorm is not null) k = _kNorm.forward(k);
        q = q.transpose(1, 2);
        k = k.transpose(1, 2);
        var v = _v.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        if (cache is not null)
            (k, v) = cache.Append(_layerIndex, k, v);
        k = RepeatKv(k);
        v = RepeatKv(v);
        var attn = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: allowed);
        var merged = attn.transpose(1, 2).reshape(b, t, _heads * _headDim);
        return _o.forward(merged).MoveToOuterDisposeScope();
    }

    private Tensor RepeatKv(Tensor kv)
    {
        int rep = _heads / _kvHeads;
        if (rep == 1) return kv;
        long b = kv.shape[0], s = kv.shape[2];
        return kv.unsqueeze(2).expand(b, _kvHeads, rep, s, _headDim).reshape(b, _heads, s, _headDim);
    }
}

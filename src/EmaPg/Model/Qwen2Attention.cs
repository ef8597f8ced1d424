using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>
/// Grouped-query self-attention as in Qwen2: biases on q/k/v (Qwen2's choice; Llama has none), none on
/// o_proj. Each key/value head serves num_attention_heads / num_key_value_heads query heads; the cache
/// stores the un-repeated kv heads so it stays small.
/// </summary>
public sealed class Qwen2Attention : nn.Module
{
    private readonly Linear _q, _k, _v, _o;
    private readonly int _heads, _kvHeads, _headDim, _layerIndex;

    public Qwen2Attention(Qwen2Config c, int layerIndex, Device device, ScalarType dtype) : base(nameof(Qwen2Attention))
    {
        _heads = c.NumAttentionHeads;
        _kvHeads = c.NumKeyValueHeads;
        _headDim = c.HeadDim;
        _layerIndex = layerIndex;
        _q = nn.Linear(c.HiddenSize, _heads * _headDim, hasBias: true, device: device, dtype: dtype);
        _k = nn.Linear(c.HiddenSize, _kvHeads * _headDim, hasBias: true, device: device, dtype: dtype);
        _v = nn.Linear(c.HiddenSize, _kvHeads * _headDim, hasBias: true, device: device, dtype: dtype);
        _o = nn.Linear(_heads * _headDim, c.HiddenSize, hasBias: false, device: device, dtype: dtype);
        register_module("q_proj", _q);
        register_module("k_proj", _k);
        register_module("v_proj", _v);
        register_module("o_proj", _o);
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
        var q = _q.forward(x).view(b, t, _heads, _headDim).transpose(1, 2);
        var k = _k.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
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

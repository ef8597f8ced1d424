using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>
/// The transformer body (HF <c>Qwen2Model</c> / <c>Qwen3Model</c> / <c>LlamaModel</c>, registered as <c>model</c> inside
/// <see cref="DecoderLM"/>): embeddings, decoder layers, final norm. Returns hidden states.
/// </summary>
public sealed class Qwen2Model : nn.Module
{
    private readonly Embedding _embed;
    private readonly ModuleList<Qwen2DecoderLayer> _layers;
    private readonly RmsNorm _norm;
    private readonly RotaryEmbedding _rotary;

    public Qwen2Model(ModelConfig c, Device device, ScalarType dtype) : base(nameof(Qwen2Model))
    {
        _embed = nn.Embedding(c.VocabSize, c.HiddenSize, device: device, dtype: dtype);
        _layers = nn.ModuleList(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new Qwen2DecoderLayer(c, i, device, dtype)).ToArray());
        _norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        _rotary = new RotaryEmbedding(c.HeadDim, c.RopeTheta, c.RopeScaling, device);
        register_module("embed_tokens", _embed);
        register_module("layers", _layers);
        register_module("norm", _norm);
        register_module("rotary_emb", _rotary);
    }

    internal Embedding EmbedTokens => _embed;
    internal RotaryEmbedding Rotary => _rotary;

    /// <summary>See <see cref="CausalLM.HiddenStates"/> for the meaning of the arguments; <paramref name="checkpoint"/>: see
    /// <see cref="CausalLM.ActivationCheckpointing"/> (applies only when autograd records and there is no cache).</summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask, KvCache? cache, bool checkpoint = false)
    {
        using var scope = NewDisposeScope();
        long b = inputIds.shape[0], t = inputIds.shape[1];
        long past = cache?.Length ?? 0;
        long s = past + t;
        var device = inputIds.device;

        Tensor keyValid, positions;
        if (attentionMask is null)
        {
            keyValid = ones([b, s], dtype: ScalarType.Bool, device: device);
            positions = arange(past, s, dtype: ScalarType.Int64, device: device).unsqueeze(0).expand(b, t);
        }
        else
        {
            if (attentionMask.dim() != 2 || attentionMask.shape[0] != b || attentionMask.shape[1] != s)
                throw new ArgumentException($"attentionMask must be [B, past+T] = [{b}, {s}], got [{string.Join(", ", attentionMask.shape)}].");
            keyValid = attentionMask.to_type(ScalarType.Bool);
            // Left padding: a row's first real token gets position 0, exactly as in HF generate().
            positions = (attentionMask.to_type(ScalarType.Int64).cumsum(1) - 1).clamp_min(0).narrow(1, past, t);
        }

        var queryPos = arange(past, s, dtype: ScalarType.Int64, device: device).unsqueeze(1); // [T,1]
        var keyPos = arange(0, s, dtype: ScalarType.Int64, device: device).unsqueeze(0);      // [1,S]
        var allowed = keyPos.le(queryPos).unsqueeze(0) & keyValid.unsqueeze(1);              // [B,T,S]
        // A pad query would otherwise see no key at all (softmax of all -inf = NaN); letting it see
        // itself keeps its (ignored) output finite without touching any real position.
        allowed = (allowed | keyPos.eq(queryPos).unsqueeze(0)).unsqueeze(1);                // [B,1,T,S]

        var h = _embed.forward(inputIds);
        var (cos, sin) = _rotary.Compute(positions, h.dtype);
        bool recompute = checkpoint && cache is null && is_grad_enabled() && h.requires_grad;
        foreach (var layer in _layers)
            h = recompute ? CheckpointedLayerFunction.apply(layer, h, cos, sin, allowed)[0] : layer.Forward(h, cos, sin, allowed, cache);
        cache?.Advance((int)t);
        return _norm.forward(h).MoveToOuterDisposeScope();
    }
}

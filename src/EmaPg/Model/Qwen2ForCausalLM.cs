using EmaPg.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>
/// Decoder-only language model with the Hugging Face Qwen2 layout. <c>named_parameters()</c> yields
/// exactly the HF names (<c>model.embed_tokens.weight</c>, <c>model.layers.{i}.self_attn.q_proj.bias</c>,
/// …, <c>lm_head.weight</c> unless embeddings are tied), so checkpoints map one to one.
/// All parameters live on <see cref="Device"/> in <see cref="DType"/>; inputs must be on the same device.
/// </summary>
public sealed class Qwen2ForCausalLM : nn.Module<Tensor, Tensor>
{
    private readonly Qwen2Model _model;
    private readonly Linear? _lmHead;

    /// <param name="config">validated on entry</param>
    /// <param name="device">where parameters live; CPU when null</param>
    /// <param name="dtype">Float32 for training; Float64 is supported for exactness tests</param>
    /// <param name="seed">seed of the private generator used for the HF-style init (normal(0, initializer_range), zero biases)</param>
    public Qwen2ForCausalLM(Qwen2Config config, Device? device = null, ScalarType dtype = ScalarType.Float32, long seed = 0)
        : base(nameof(Qwen2ForCausalLM))
    {
        Config = config.Validate();
        Device = device ?? CPU;
        DType = dtype;
        _model = new Qwen2Model(config, Device, dtype);
        register_module("model", _model);
        if (!config.TieWordEmbeddings)
        {
            _lmHead = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false, device: Device, dtype: dtype);
            register_module("lm_head", _lmHead);
        }
        Initialize(seed);
    }

    public Qwen2Config Config { get; }
    public Device Device { get; }
    public ScalarType DType { get; }

    public long ParameterCount => parameters().Sum(p => p.numel());

    private void Initialize(long seed)
    {
        // A private generator keeps model init independent of (and from disturbing) the global RNG.
        using var gen = new Generator((ulong)seed, CPU);
        using var noGrad = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith(".bias", StringComparison.Ordinal))
                p.zero_();
            else if (p.dim() == 2)
                p.copy_(empty(p.shape, dtype: p.dtype).normal_(0, Config.InitializerRange, gen));
            // 1-D weights are RMSNorm gains and stay at one.
        }
    }

    public override Tensor forward(Tensor inputIds) => Forward(inputIds);

    /// <summary>
    /// Logits [B,T,V] for <paramref name="inputIds"/> [B,T] (int64).
    /// </summary>
    /// <param name="attentionMask">
    /// [B, past+T] with 1 for real tokens and 0 for padding, covering the cached positions too; null
    /// means no padding. Position ids are derived from it (cumsum − 1), so left padding is handled.
    /// Right padding also works for scoring since later positions never influence earlier ones.
    /// </param>
    /// <param name="cache">
    /// If given, the new keys/values are appended and attention covers cached + new positions; this
    /// requires torch.no_grad(). Position ids stay consistent with the uncached forward.
    /// </param>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null)
    {
        using var scope = NewDisposeScope();
        var h = _model.Forward(inputIds, attentionMask, cache);
        var logits = _lmHead is null ? matmul(h, _model.EmbedTokens.weight!.t()) : _lmHead.forward(h);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>An empty cache for <paramref name="batch"/> rows and up to <paramref name="capacity"/> positions.</summary>
    public KvCache CreateCache(long batch, int capacity)
    {
        Check.Range("cache capacity", capacity, 1, Config.MaxPositionEmbeddings);
        return new KvCache(Config.NumHiddenLayers, batch, Config.NumKeyValueHeads, capacity, Config.HeadDim, DType, Device);
    }

    /// <summary>Copies every parameter of <paramref name="source"/> (same config) into this model in place.</summary>
    public void CopyParametersFrom(Qwen2ForCausalLM source)
    {
        if (source.Config != Config)
            throw new ArgumentException("CopyParametersFrom needs models with identical configs.");
        using var noGrad = no_grad();
        var src = source.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        foreach (var (name, p) in named_parameters())
            p.copy_(src[name]);
    }

    /// <summary>
    /// In place, θ ← (1 − <paramref name="weight"/>)·θ + weight·θ_source for every parameter: the EMA
    /// anchor update (weight = η) or a hard copy (weight = 1). Uses lerp_ so no temporaries are made.
    /// </summary>
    public void LerpParametersFrom(Qwen2ForCausalLM source, double weight)
    {
        Check.Range("EMA weight", weight, 0.0, 1.0);
        if (source.Config != Config)
            throw new ArgumentException("LerpParametersFrom needs models with identical configs.");
        using var noGrad = no_grad();
        var src = source.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        foreach (var (name, p) in named_parameters())
            p.lerp_(src[name], weight);
    }

    /// <summary>A new, independent model with the same config, device, dtype and parameter values
    /// (e.g. the frozen π_old or the EMA anchor). Its parameters still require grad; freeze as needed.</summary>
    public Qwen2ForCausalLM Clone()
    {
        var copy = new Qwen2ForCausalLM(Config, Device, DType);
        copy.CopyParametersFrom(this);
        copy.train(training);
        return copy;
    }
}

using EmaPg.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>
/// The pre-norm decoder shared by Qwen2, Qwen3 and Llama (RMSNorm, RoPE, grouped-query attention,
/// SwiGLU), with the pieces that differ switched by <see cref="ModelConfig.Features"/>.
/// <c>named_parameters()</c> yields exactly the HF names (<c>model.embed_tokens.weight</c>,
/// <c>model.layers.{i}.self_attn.q_proj.bias</c>, …, <c>lm_head.weight</c> unless embeddings are tied),
/// so checkpoints map one to one. The trainer's toy policy is the default <see cref="ModelConfig"/> (a qwen2).
/// </summary>
public sealed class DecoderLM : CausalLM
{
    private readonly Qwen2Model _model;
    private readonly Linear? _lmHead;

    /// <param name="config">validated on entry</param>
    /// <param name="device">where parameters live; CPU when null</param>
    /// <param name="dtype">Float32 for training; Float64 for exactness tests; BFloat16/Float16 to hold checkpoints as stored</param>
    /// <param name="seed">seed of the private generator used for the HF-style init (normal(0, initializer_range), zero biases);
    /// null skips it (TorchSharp's default layer init stays) for a model whose weights are loaded next</param>
    public DecoderLM(ModelConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32, long? seed = 0)
        : base(nameof(DecoderLM), config, device, dtype)
    {
        _model = new Qwen2Model(Config, Device, dtype);
        register_module("model", _model);
        if (!config.TieWordEmbeddings)
        {
            _lmHead = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false, device: Device, dtype: dtype);
            register_module("lm_head", _lmHead);
        }
        if (seed is { } s) Initialize(s);
    }

    private void Initialize(long seed)
    {
        // A private generator keeps model init independent of (and from disturbing) the global RNG.
        using var gen = new Generator((ulong)seed, CPU);
        using var noGrad = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            using var scope = NewDisposeScope();   // frees each normal_ temporary at once rather than leaving a model's worth to the finalizer
            if (name.EndsWith(".bias", StringComparison.Ordinal))
                p.zero_();
            else if (p.dim() == 2)
                p.copy_(empty(p.shape, dtype: p.dtype).normal_(0, Config.InitializerRange, gen));
            // 1-D weights are RMSNorm gains and stay at one.
        }
    }

    public override Tensor HiddenStates(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null) =>
        _model.Forward(inputIds, attentionMask, cache, ActivationCheckpointing);

    public override Tensor LmHeadWeight => _lmHead is null ? _model.EmbedTokens.weight! : _lmHead.weight!;

    protected override Tensor Logits(Tensor hidden) => _lmHead is null ? base.Logits(hidden) : _lmHead.forward(hidden);

    /// <summary>See <see cref="RotaryEmbedding.RoundFrequencies"/>.</summary>
    internal void RoundRopeFrequencies(ScalarType dtype) => _model.Rotary.RoundFrequencies(dtype);

    public override KvCache CreateCache(long batch, int capacity)
    {
        Check.Range("cache capacity", capacity, 1, Config.MaxPositionEmbeddings);
        return new KvCache(Config.NumHiddenLayers, batch, Config.NumKeyValueHeads, capacity, Config.HeadDim, DType, Device);
    }

    public override CausalLM Clone(ScalarType? dtype = null)
    {
        var copy = new DecoderLM(Config, Device, dtype ?? DType);
        copy.CopyParametersFrom(this);
        copy.train(training);
        return copy;
    }
}

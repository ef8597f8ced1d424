using EmaPg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>
/// What the sampler, scorer, trainer, evaluator and checkpoint code see of a causal language model:
/// hidden states after the final norm, the LM-head weight, a KV cache, and parameters named as in
/// Hugging Face (so they map one to one onto safetensors files). Concrete architectures
/// (<see cref="DecoderLM"/>, registered in <see cref="Architectures"/>) implement the abstract members;
/// logits, parameter copies and the EMA lerp are defined once here.
/// All parameters live on <see cref="Device"/> in <see cref="DType"/>; inputs must be on the same device.
/// </summary>
public abstract class CausalLM : nn.Module<Tensor, Tensor>
{
    protected CausalLM(string name, ModelConfig config, Device? device, ScalarType dtype) : base(name)
    {
        Config = config.Validate();
        Device = device ?? CPU;
        DType = dtype;
    }

    public ModelConfig Config { get; }
    public Device Device { get; }
    public ScalarType DType { get; }

    /// <summary>
    /// Activation checkpointing per decoder layer: while autograd records, each layer keeps only its input and runs its
    /// forward again in the backward pass (one more forward of the body per step, layer activations never all held at once).
    /// Values and gradients are those of the plain forward. Off by default; the trainer sets it from
    /// <c>activation_checkpointing</c>. Not copied by <see cref="Clone"/>.
    /// </summary>
    public bool ActivationCheckpointing { get; set; }

    /// <summary>Distinct parameters (tied embeddings count once).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>
    /// Hidden states [B,T,hidden] after the final norm for <paramref name="inputIds"/> [B,T] (int64).
    /// </summary>
    /// <param name="attentionMask">
    /// [B, past+T] with 1 for real tokens and 0 for padding, covering the cached positions too; null
    /// means no padding. Position ids are derived from it (cumsum − 1, clamped at 0), so left padding is
    /// handled as in HF generate(). Right padding also works for scoring since later positions never
    /// influence earlier ones.
    /// </param>
    /// <param name="cache">
    /// If given, the new keys/values are appended and attention covers cached + new positions; this
    /// requires torch.no_grad(). Position ids stay consistent with the uncached forward.
    /// </param>
    public abstract Tensor HiddenStates(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null);

    /// <summary>The LM-head weight [V, hidden] (the embedding matrix when embeddings are tied).</summary>
    public abstract Tensor LmHeadWeight { get; }

    /// <summary>An empty cache for <paramref name="batch"/> rows and up to <paramref name="capacity"/> positions.</summary>
    public abstract KvCache CreateCache(long batch, int capacity);

    /// <summary>A new, independent model with the same config, device, dtype and parameter values
    /// (e.g. the frozen π_old or the EMA anchor). Its parameters still require grad; freeze as needed.
    /// With <paramref name="dtype"/> the copy holds its parameters in that dtype instead (each value rounded once), e.g. a
    /// BFloat16 anchor.</summary>
    public abstract CausalLM Clone(ScalarType? dtype = null);

    public override Tensor forward(Tensor inputIds) => Forward(inputIds);

    /// <summary>Logits [B,T,V]; see <see cref="HiddenStates"/> for the arguments.</summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null)
    {
        using var scope = NewDisposeScope();
        return Logits(HiddenStates(inputIds, attentionMask, cache)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Next-token logits [B, V] at the last position only (a generation's prefill): the head sees B hidden states, not
    /// B·T, so no [B, T, V] tensor is made (2.3 GiB for 64 prompts of 60 tokens at |V| = 151936).
    /// </summary>
    public Tensor LastLogits(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null)
    {
        using var scope = NewDisposeScope();
        return Logits(HiddenStates(inputIds, attentionMask, cache).select(1, -1)).MoveToOuterDisposeScope();
    }

    /// <summary>Whether parameters are held in a 16-bit float type (a BFloat16 anchor): callers that need float32 log-probs upcast
    /// hidden states and the head weight before the head.</summary>
    public bool IsReducedPrecision => DType is ScalarType.BFloat16 or ScalarType.Float16;

    /// <summary>Logits [.., V] from hidden states [.., hidden]: the LM head.</summary>
    protected virtual Tensor Logits(Tensor hidden) => matmul(hidden, LmHeadWeight.t());

    /// <summary>Copies every parameter of <paramref name="source"/> (same config) into this model in place.</summary>
    public void CopyParametersFrom(CausalLM source)
    {
        if (source.Config != Config)
            throw new ArgumentException("CopyParametersFrom needs models with identical configs.");
        using var noGrad = no_grad();
        var src = source.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        foreach (var (name, p) in named_parameters())
            p.copy_(src[name]);
    }
}

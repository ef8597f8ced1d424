using EmaPg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>
/// One supported architecture: its HF <c>model_type</c> and <c>architectures[0]</c> class name, which
/// optional decoder pieces it has, HF defaults that differ between architectures, and how to build it.
/// A new architecture is one more entry here plus, if its layers differ, its own <see cref="CausalLM"/>.
/// </summary>
/// <param name="Name">HF <c>model_type</c></param>
/// <param name="HfClass">HF <c>architectures[0]</c> written to and expected in config.json</param>
/// <param name="DefaultHeadDim">head_dim when config.json omits it; null = hidden_size / num_attention_heads</param>
public sealed record Architecture(
    string Name,
    string HfClass,
    string Description,
    Func<ModelConfig, DecoderFeatures> Features,
    int? DefaultHeadDim,
    Func<ModelConfig, Device?, ScalarType, long?, CausalLM> Create);

/// <summary>Every architecture by HF <c>model_type</c>.</summary>
public static class Architectures
{
    private static readonly Architecture[] All =
    [
        new("qwen2", "Qwen2ForCausalLM", "Qwen2 / Qwen2.5: biases on q/k/v, none on o_proj",
            _ => new DecoderFeatures(QkvBias: true, OutputBias: false, QkNorm: false, MlpBias: false),
            DefaultHeadDim: null, Create: (c, d, t, s) => new DecoderLM(c, d, t, s)),
        new("qwen3", "Qwen3ForCausalLM", "Qwen3: per-head RMSNorm of q and k before RoPE, explicit head_dim, attention_bias",
            c => new DecoderFeatures(c.AttentionBias ?? false, c.AttentionBias ?? false, QkNorm: true, MlpBias: false),
            DefaultHeadDim: 128, Create: (c, d, t, s) => new DecoderLM(c, d, t, s)),
        new("llama", "LlamaForCausalLM", "Llama 2/3: attention_bias, mlp_bias, rope_scaling of type llama3",
            c => new DecoderFeatures(c.AttentionBias ?? false, c.AttentionBias ?? false, QkNorm: false, c.MlpBias ?? false),
            DefaultHeadDim: null, Create: (c, d, t, s) => new DecoderLM(c, d, t, s)),
    ];

    public static IReadOnlyList<Architecture> List => All;

    public static Architecture Get(string modelType) =>
        All.FirstOrDefault(a => a.Name == modelType)
        ?? throw new UserError($"model_type '{modelType}' is not supported; supported: {string.Join(", ", All.Select(a => a.Name))}.");

    /// <summary>A freshly initialised model of <paramref name="config"/>'s architecture; a null
    /// <paramref name="seed"/> skips the HF-style init, for weights that are loaded right after.</summary>
    public static CausalLM Create(ModelConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32, long? seed = 0) =>
        Get(config.Validate().Architecture).Create(config, device, dtype, seed);
}

using System.Text.Json;
using System.Text.Json.Serialization;
using EmaPg.Common;

namespace EmaPg.Model;

/// <summary>
/// Shape of a decoder of the Qwen2 / Qwen3 / Llama family. Property names serialise to the Hugging Face
/// <c>config.json</c> keys (snake_case) so a config can be compared with, or copied from, a real model.
/// The defaults are the toy Qwen2 the trainer uses (trains in seconds on two CPU cores); only the
/// vocabulary has no sensible default, because it belongs to the task's tokenizer.
/// The architecture-specific fields are nullable and left out of <see cref="ToJson"/> when unset, so the
/// toy's JSON (and with it the cold-start cache key) is the same as before they existed.
/// </summary>
public sealed record ModelConfig
{
    public required int VocabSize { get; init; }
    public int HiddenSize { get; init; } = 128;
    public int IntermediateSize { get; init; } = 384;
    public int NumHiddenLayers { get; init; } = 3;
    public int NumAttentionHeads { get; init; } = 4;
    public int NumKeyValueHeads { get; init; } = 2;
    public double RopeTheta { get; init; } = 10000.0;
    public double RmsNormEps { get; init; } = 1e-6;
    public bool TieWordEmbeddings { get; init; } = true;
    public int MaxPositionEmbeddings { get; init; } = 128;
    /// <summary>Std of the normal init of every weight matrix (HF <c>initializer_range</c>).</summary>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary>HF <c>model_type</c>, a name in <see cref="Architectures"/>; null means <c>qwen2</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? ModelType { get; init; }
    /// <summary>Per-head width when it is not hidden_size / num_attention_heads (Qwen3); null = that quotient.</summary>
    [JsonPropertyName("head_dim"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? ExplicitHeadDim { get; init; }
    /// <summary>HF <c>attention_bias</c> (Qwen3, Llama: biases on q/k/v/o); Qwen2 always has q/k/v biases and ignores it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public bool? AttentionBias { get; init; }
    /// <summary>HF <c>mlp_bias</c> (Llama only).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public bool? MlpBias { get; init; }
    /// <summary>Llama 3 frequency-dependent RoPE scaling; null = plain RoPE.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Llama3RopeScaling? RopeScaling { get; init; }

    [JsonIgnore] public string Architecture => ModelType ?? "qwen2";
    [JsonIgnore] public int HeadDim => ExplicitHeadDim ?? HiddenSize / NumAttentionHeads;
    /// <summary>Which optional pieces the decoder has, decided by the architecture.</summary>
    [JsonIgnore] public DecoderFeatures Features => Architectures.Get(Architecture).Features(this);

    /// <summary>Throws <see cref="UserError"/> naming the first bad field; returns this for chaining.</summary>
    public ModelConfig Validate()
    {
        Architectures.Get(Architecture);
        Check.Range("vocab_size", VocabSize, 2, 1 << 24);
        Check.Range("hidden_size", HiddenSize, 2, 1 << 16);
        Check.Range("intermediate_size", IntermediateSize, 1, 1 << 18);
        Check.Range("num_hidden_layers", NumHiddenLayers, 1, 1024);
        Check.Range("num_attention_heads", NumAttentionHeads, 1, ExplicitHeadDim is null ? HiddenSize : 1 << 12);
        Check.Range("num_key_value_heads", NumKeyValueHeads, 1, NumAttentionHeads);
        Check.Range("rope_theta", RopeTheta, 1.0, double.PositiveInfinity, minInclusive: false);
        Check.Range("rms_norm_eps", RmsNormEps, 0.0, 1.0, minInclusive: false);
        Check.Range("max_position_embeddings", MaxPositionEmbeddings, 1, 1 << 24);
        Check.Range("initializer_range", InitializerRange, 0.0, 10.0, minInclusive: false);
        if (ExplicitHeadDim is { } hd)
            Check.Range("head_dim", hd, 2, 1 << 12);
        else if (HiddenSize % NumAttentionHeads != 0)
            throw new UserError($"hidden_size ({HiddenSize}) must be divisible by num_attention_heads ({NumAttentionHeads}).");
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw new UserError($"num_attention_heads ({NumAttentionHeads}) must be divisible by num_key_value_heads ({NumKeyValueHeads}).");
        if (HeadDim % 2 != 0)
            throw new UserError($"head dim (head_dim or hidden_size/num_attention_heads) must be even for rotary embeddings, got {HeadDim}.");
        RopeScaling?.Validate();
        return this;
    }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static ModelConfig FromJson(string json) =>
        (JsonSerializer.Deserialize<ModelConfig>(json, JsonOptions) ?? throw new UserError("model config JSON is empty.")).Validate();
}

/// <summary>
/// HF <c>rope_scaling</c> of type <c>llama3</c>: wavelengths above original_max_position_embeddings /
/// low_freq_factor are slowed by <c>factor</c>, those below original / high_freq_factor kept, and the
/// band between interpolated (transformers' <c>_compute_llama3_parameters</c>).
/// </summary>
public sealed record Llama3RopeScaling
{
    public double Factor { get; init; }
    public double LowFreqFactor { get; init; }
    public double HighFreqFactor { get; init; }
    public int OriginalMaxPositionEmbeddings { get; init; }

    public Llama3RopeScaling Validate()
    {
        Check.Range("rope_scaling.factor", Factor, 0.0, double.PositiveInfinity, minInclusive: false);
        Check.Range("rope_scaling.low_freq_factor", LowFreqFactor, 0.0, double.PositiveInfinity, minInclusive: false);
        Check.Range("rope_scaling.high_freq_factor", HighFreqFactor, LowFreqFactor, double.PositiveInfinity, minInclusive: false);
        Check.Range("rope_scaling.original_max_position_embeddings", OriginalMaxPositionEmbeddings, 1, 1 << 24);
        return this;
    }
}

/// <param name="QkvBias">biases on q_proj, k_proj, v_proj</param>
/// <param name="OutputBias">bias on o_proj</param>
/// <param name="QkNorm">per-head RMSNorm of queries and keys before RoPE (Qwen3's q_norm / k_norm)</param>
/// <param name="MlpBias">biases on gate/up/down projections</param>
public sealed record DecoderFeatures(bool QkvBias, bool OutputBias, bool QkNorm, bool MlpBias);

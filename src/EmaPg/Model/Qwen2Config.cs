using System.Text.Json;
using System.Text.Json.Serialization;
using EmaPg.Common;

namespace EmaPg.Model;

/// <summary>
/// Shape of a Qwen2/Llama-style decoder. Property names serialise to the Hugging Face
/// <c>config.json</c> keys (snake_case) so a config can be compared with, or copied from, a real model.
/// The defaults are a toy size that trains in seconds on two CPU cores; only the vocabulary has no
/// sensible default, because it belongs to the task's tokenizer.
/// </summary>
public sealed record Qwen2Config
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

    [JsonIgnore] public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Throws <see cref="UserError"/> naming the first bad field; returns this for chaining.</summary>
    public Qwen2Config Validate()
    {
        Check.Range("vocab_size", VocabSize, 2, 1 << 24);
        Check.Range("hidden_size", HiddenSize, 2, 1 << 16);
        Check.Range("intermediate_size", IntermediateSize, 1, 1 << 18);
        Check.Range("num_hidden_layers", NumHiddenLayers, 1, 1024);
        Check.Range("num_attention_heads", NumAttentionHeads, 1, HiddenSize);
        Check.Range("num_key_value_heads", NumKeyValueHeads, 1, NumAttentionHeads);
        Check.Range("rope_theta", RopeTheta, 1.0, double.PositiveInfinity, minInclusive: false);
        Check.Range("rms_norm_eps", RmsNormEps, 0.0, 1.0, minInclusive: false);
        Check.Range("max_position_embeddings", MaxPositionEmbeddings, 1, 1 << 20);
        Check.Range("initializer_range", InitializerRange, 0.0, 10.0, minInclusive: false);
        if (HiddenSize % NumAttentionHeads != 0)
            throw new UserError($"hidden_size ({HiddenSize}) must be divisible by num_attention_heads ({NumAttentionHeads}).");
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw new UserError($"num_attention_heads ({NumAttentionHeads}) must be divisible by num_key_value_heads ({NumKeyValueHeads}).");
        if (HeadDim % 2 != 0)
            throw new UserError($"head dim hidden_size/num_attention_heads must be even for rotary embeddings, got {HeadDim}.");
        return this;
    }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static Qwen2Config FromJson(string json) =>
        (JsonSerializer.Deserialize<Qwen2Config>(json, JsonOptions) ?? throw new UserError("model config JSON is empty.")).Validate();
}

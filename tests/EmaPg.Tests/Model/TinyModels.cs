using EmaPg.Model;
using static TorchSharp.torch;

namespace EmaPg.Tests.Model;

/// <summary>Toy configs that build and run in milliseconds.</summary>
internal static class TinyModels
{
    public static ModelConfig Config(bool tied = true, int kvHeads = 2) => new()
    {
        VocabSize = 13,
        HiddenSize = 16,
        IntermediateSize = 24,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        NumKeyValueHeads = kvHeads,
        TieWordEmbeddings = tied,
        MaxPositionEmbeddings = 64,
        // A larger init than HF's 0.02 so logits are far from uniform and comparisons are meaningful.
        InitializerRange = 0.3,
    };

    /// <summary>Same shape and all elements equal (TorchSharp's Tensor.equal is element-wise).</summary>
    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    public static DecoderLM Float64(bool tied = true, int kvHeads = 2, long seed = 1) =>
        new(Config(tied, kvHeads), CPU, ScalarType.Float64, seed);
}

using EmaPg.Model;
using EmaPg.Model.HuggingFace;
using static TorchSharp.torch;

namespace EmaPg.Tests.Model.HuggingFace;

/// <summary>
/// The embedded configs of `model init --like` against the sizes the model cards publish (total and
/// non-embedding parameters, to the cards' precision). The count is the sum over the tensors an HF
/// checkpoint of the config holds — the same set the strict loader demands, which the parity tests tie
/// to transformers' own checkpoints.
/// </summary>
public class KnownConfigTests
{
    [Theory]
    // name, model-card total (B), model-card non-embedding (B; NaN where the card gives none), decimals
    [InlineData("qwen2.5-0.5b", 0.49, 0.36, 2)]      // Qwen2.5-0.5B card: 0.49B, non-embedding 0.36B
    [InlineData("qwen2.5-1.5b", 1.54, 1.31, 2)]      // Qwen2.5-1.5B card: 1.54B, non-embedding 1.31B
    [InlineData("qwen3-0.6b", 0.6, 0.44, 1)]         // Qwen3-0.6B card: 0.6B, non-embedding 0.44B
    [InlineData("qwen3-1.7b", 1.7, 1.4, 1)]          // Qwen3-1.7B card: 1.7B, non-embedding 1.4B
    [InlineData("llama-3.2-1b", 1.23, double.NaN, 2)] // Llama 3.2 card: 1.23B
    [InlineData("r1-distill-qwen-1.5b", 1.78, double.NaN, 2)] // Hub: 1.78B (untied: embedding + LM head)
    public void Parameter_counts_match_the_model_cards(string name, double totalB, double nonEmbeddingB, int decimals)
    {
        var config = HfConfig.Parse(HfConfig.Known(name), name);
        var m = config.Model;
        long total = Count(m);
        long embedding = (long)m.VocabSize * m.HiddenSize;
        double unit = Math.Pow(10, -decimals);
        Assert.InRange(total / 1e9, totalB - unit, totalB + unit);
        if (!double.IsNaN(nonEmbeddingB))
            Assert.InRange((total - embedding) / 1e9, nonEmbeddingB - unit / 2, nonEmbeddingB + unit / 2);
        Assert.Equal(ScalarType.BFloat16, config.DType);
    }

    [Fact]
    public void Exact_counts_of_the_widely_quoted_models_and_of_a_built_module()
    {
        ModelConfig C(string n) => HfConfig.Parse(HfConfig.Known(n), n).Model;
        Assert.Equal(494_032_768, Count(C("qwen2.5-0.5b")));
        Assert.Equal(1_235_814_400, Count(C("llama-3.2-1b")));
        Assert.Equal(1_543_714_304, Count(C("qwen2.5-1.5b")));
        // The closed form is the module's count (a 2-layer, 64-wide variant of each architecture).
        foreach (var n in HfConfig.KnownNames)
        {
            var small = C(n) with { NumHiddenLayers = 2, HiddenSize = 64, IntermediateSize = 96, NumAttentionHeads = 4, NumKeyValueHeads = 2, VocabSize = 500, ExplicitHeadDim = 16 };
            using var model = Architectures.Create(small);
            Assert.Equal(Count(small), model.ParameterCount);
        }
    }

    /// <summary>Embedding (+ LM head if untied) + per layer q,k,v,o (+ biases) + q/k norms + SwiGLU + 2 norms, + final norm.</summary>
    private static long Count(ModelConfig c)
    {
        long h = c.HiddenSize, d = c.HeadDim, q = c.NumAttentionHeads * d, kv = c.NumKeyValueHeads * d, i = c.IntermediateSize;
        bool qwen2 = c.Architecture == "qwen2", qwen3 = c.Architecture == "qwen3";
        bool bias = !qwen2 && c.AttentionBias == true;
        long layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h
            + (qwen2 || bias ? q + 2 * kv : 0) + (bias ? h : 0) + (qwen3 ? 2 * d : 0);
        return (long)c.VocabSize * h * (c.TieWordEmbeddings ? 1 : 2) + c.NumHiddenLayers * layer + h;
    }
}

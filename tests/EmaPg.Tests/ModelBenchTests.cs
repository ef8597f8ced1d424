using EmaPg.Bench;
using EmaPg.Common;

namespace EmaPg.Tests;

/// <summary>The real-shape benchmarks take minutes; here only that bad options fail fast with a message naming the option.</summary>
public class ModelBenchTests
{
    [Theory]
    [InlineData(1000, 512, 32, "--tokens")]
    [InlineData(2048, 512, 512, "--prompt-length")]
    [InlineData(2048, 70000, 32, "--seq-len")]
    public void TrainStepRejectsBadShapesBeforeBuildingTheModel(int tokens, int seqLen, int prompt, string option)
    {
        var e = Assert.Throws<UserError>(() => TrainStepBench.Run(new TrainStepBenchOptions { Tokens = tokens, SeqLen = seqLen, PromptLength = prompt }));
        Assert.Contains(option, e.Message);
    }

    [Fact]
    public void UnknownModelNamesAreUserErrors()
    {
        Assert.Contains("--like", Assert.Throws<UserError>(() => TrainStepBench.Run(new TrainStepBenchOptions { Like = "gpt-5" })).Message);
        Assert.Contains("--like", Assert.Throws<UserError>(() => SampleBench.Run(new SampleBenchOptions { Like = "gpt-5" })).Message);
        Assert.Contains("--batch", Assert.Throws<UserError>(() => SampleBench.Run(new SampleBenchOptions { Batch = 0 })).Message);
    }

    /// <summary>--set overrides reach the benchmarked model: a 1-layer width-16 Qwen3 of 5000 ids has exactly
    /// 5000·16 (tied embedding) + 2352 (one layer: q 16·16, k and v 16·8 each, o 16·16, q/k norms 8 each, the MLP 3·16·32,
    /// two norms 16 each) + 16 (final norm) parameters.</summary>
    [Fact]
    public void SampleBenchAppliesConfigOverrides()
    {
        var report = SampleBench.Run(new SampleBenchOptions
        {
            Like = "qwen3-0.6b", Batch = 2, NewTokens = 2, PromptLength = 2, ReturnTopK = 4, Reps = 1,
            Set = ["vocab_size=5000", "hidden_size=16", "intermediate_size=32", "num_hidden_layers=1", "num_attention_heads=2", "num_key_value_heads=1", "head_dim=8"],
        });
        Assert.Equal(5000 * 16 + 2352 + 16, report.Parameters);
        Assert.Equal("qwen3-0.6b with vocab_size=5000 hidden_size=16 intermediate_size=32 num_hidden_layers=1 num_attention_heads=2 num_key_value_heads=1 head_dim=8", report.Like);
    }
}

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
}

using EmaPg.Eval;
using EmaPg.Model;
using EmaPg.Tasks;
using EmaPg.Training;
using static TorchSharp.torch;

namespace EmaPg.Tests.Training;

public class ColdStartTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emapg-sft-").FullName;
    private static readonly ArithmeticTask Task = new(new ArithmeticTaskConfig { MaxDigits = 1, TestSize = 16 });

    private static ModelConfig Tiny => new()
    {
        VocabSize = Task.Tokenizer.VocabSize, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 1,
        NumAttentionHeads = 4, NumKeyValueHeads = 2, MaxPositionEmbeddings = 16,
    };

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The constant schedule is the warm-up formula it always was; the cosine one ends at 0.1 × the peak, falls
    /// monotonically after the warm-up, and only it enters the cache key.</summary>
    [Fact]
    public void TheRateScheduleWarmsUpThenStaysOrDecaysAlongACosine()
    {
        var constant = new ColdStartConfig { Steps = 101, LearningRate = 3e-3, WarmupSteps = 20 };
        for (int step = 0; step < 101; step++)
            Assert.Equal(3e-3 * Math.Min(1.0, (step + 1.0) / 20), constant.RateAt(step));
        var cosine = constant with { CosineDecay = true };
        Assert.Equal(constant.RateAt(5), cosine.RateAt(5));
        Assert.Equal(3e-3, cosine.RateAt(20), 15);
        Assert.Equal(3e-3 * 0.55, cosine.RateAt(60), 15);   // halfway through the decay
        Assert.Equal(3e-4, cosine.RateAt(100), 15);
        for (int step = 21; step < 101; step++) Assert.True(cosine.RateAt(step) < cosine.RateAt(step - 1));
        Assert.DoesNotContain("CosineDecay", constant.ToJson());
        Assert.NotEqual(ColdStart.CacheKey(Tiny, Task, constant), ColdStart.CacheKey(Tiny, Task, cosine));
    }

    [Fact]
    public void TrainsLowersTheLossCachesAndReusesTheCheckpoint()
    {
        var sft = new ColdStartConfig { Steps = 60, BatchSize = 32, LearningRate = 1e-2, WarmupSteps = 5 };
        var first = ColdStart.Run(Tiny, Task, sft, _dir);
        Assert.False(first.FromCache);
        Assert.True(File.Exists(first.CheckpointPath));
        Assert.StartsWith("coldstart-" + ColdStart.CacheKey(Tiny, Task, sft), Path.GetFileName(first.CheckpointPath));
        // Uniform guessing over 16 tokens costs ln 16 ≈ 2.77 nats per token; 60 steps must beat it clearly.
        Assert.True(first.FinalLoss < 2.0, $"final loss {first.FinalLoss}");

        var second = ColdStart.Run(Tiny, Task, sft, _dir);
        Assert.True(second.FromCache);
        Assert.Equal(first.FinalLoss, second.FinalLoss);
        var a = first.Model.named_parameters().Select(p => p.parameter).ToList();
        var b = second.Model.named_parameters().Select(p => p.parameter).ToList();
        Assert.All(a.Zip(b), t => Assert.True(t.First.eq(t.Second).all().item<bool>()));

        // Any change of settings is a different cache entry.
        Assert.NotEqual(ColdStart.CacheKey(Tiny, Task, sft), ColdStart.CacheKey(Tiny, Task, sft with { Seed = 2 }));
        Assert.NotEqual(ColdStart.CacheKey(Tiny, Task, sft), ColdStart.CacheKey(Tiny with { HiddenSize = 64 }, Task, sft));

        var eval = Evaluator.Evaluate(second.Model, Task, new EvalOptions { SamplesPerProblem = 4, Ks = [1, 4] });
        Assert.Equal(16, eval.CorrectCounts.Count);
        // With n = 4 samples: pass@1 = Σc/(4·problems), pass@4 = the fraction of problems solved at least once.
        Assert.Equal(eval.CorrectCounts.Sum() / (4.0 * 16), eval.PassAtK[1], 12);
        Assert.Equal(eval.CorrectCounts.Count(c => c > 0) / 16.0, eval.PassAtK[4], 12);
        Assert.True(eval.GeneratedTokens > 0);
        // Same seed, same model → same evaluation.
        Assert.Equal(eval.CorrectCounts, Evaluator.Evaluate(second.Model, Task, new EvalOptions { SamplesPerProblem = 4, Ks = [1, 4] }).CorrectCounts);
        first.Model.Dispose();
        second.Model.Dispose();
    }

    [Fact]
    public void VocabularySmallerThanTokenizerIsAUserError() =>
        // Padding the embedding past the tokenizer is allowed (unused rows); fewer rows than tokens is not.
        Assert.Throws<EmaPg.Common.UserError>(() => ColdStart.Run(Tiny with { VocabSize = Task.Tokenizer.VocabSize - 1 }, Task, new ColdStartConfig(), null));
}

using EmaPg.Model;
using EmaPg.Training;
using static TorchSharp.torch;

namespace EmaPg.Tests.Training;

public class ActivationCheckpointingTrainingTests
{
    private static DecoderLM Policy() => new(new ModelConfig
    {
        VocabSize = 20, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, MaxPositionEmbeddings = 32,
    }, CPU, ScalarType.Float32, 5);

    [Theory]
    [InlineData("on")]
    [InlineData("off")]
    public void AnIterationGivesTheSameMetricsAndParametersWithCheckpointing(string fusedHead)
    {
        var c = new TrainConfig
        {
            Seed = 3, PromptsPerIteration = 4, GroupSize = 4, MaxNewTokens = 2, LearningRate = 1e-2, KlTopK = 4, KlBeta = 0.5, Minibatches = 2,
            EvalProblems = 2, EvalSamples = 2, PassK = 2, FusedHead = fusedHead,
        };
        var task = new SaySevenTask();
        using var basePolicy = Policy();
        using var plain = new Trainer(c with { ActivationCheckpointing = "off" }, task, basePolicy, 0, 0);
        using var ckpt = new Trainer(c with { ActivationCheckpointing = "on" }, task, basePolicy, 0, 0);
        Assert.False(plain.Policy.ActivationCheckpointing);
        Assert.True(ckpt.Policy.ActivationCheckpointing);
        var a = plain.Iteration(1);
        var b = ckpt.Iteration(1);
        foreach (var key in new[] { "kl", "pg_objective", "entropy", "grad_norm", "is_weight_mean", "reward_mean" })
            Assert.True(Math.Abs(a[key] - b[key]) <= 1e-6 * Math.Max(1, Math.Abs(a[key])), $"{key}: {a[key]} vs {b[key]}");
        // The recomputed forward is the same sequence of float operations, so the update is the same to the bit.
        var pb = ckpt.Policy.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        foreach (var (name, p) in plain.Policy.named_parameters())
            Assert.True(p.eq(pb[name]).all().item<bool>(), $"{name} differs after one update");
    }

    [Fact]
    public void AutoSwitchesOnAboveTheParameterThreshold()
    {
        var c = new TrainConfig();
        Assert.False(ConfigSchema.UseActivationCheckpointing(c, ConfigSchema.CheckpointingAutoParameters - 1));
        Assert.True(ConfigSchema.UseActivationCheckpointing(c, ConfigSchema.CheckpointingAutoParameters));
        Assert.True(ConfigSchema.UseActivationCheckpointing(c with { ActivationCheckpointing = "on" }, 1));
        Assert.False(ConfigSchema.UseActivationCheckpointing(c with { ActivationCheckpointing = "off" }, long.MaxValue));
    }
}

using EmaPg.Anchor;
using EmaPg.Model;
using EmaPg.Sampling;
using EmaPg.Training;
using static TorchSharp.torch;

namespace EmaPg.Tests.Training;

public class AnchorDtypeTests
{
    private static DecoderLM Policy() => new(new ModelConfig
    {
        VocabSize = 20, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, MaxPositionEmbeddings = 32,
    }, CPU, ScalarType.Float32, 5);

    private static TrainConfig Config(string anchorDtype) => new()
    {
        Seed = 3, PromptsPerIteration = 4, GroupSize = 4, MaxNewTokens = 2, LearningRate = 1e-2, KlTopK = 4, KlBeta = 0.5, EmaPeriod = 1,
        EvalProblems = 2, EvalSamples = 2, PassK = 2, AnchorDtype = anchorDtype,
    };

    [Fact]
    public void ExactKeepsThePolicyDtypeAndBfloat16HalvesTheAnchor()
    {
        using var basePolicy = Policy();
        using var exact = new Trainer(Config("exact"), new SaySevenTask(), basePolicy, 0, 0);
        using var half = new Trainer(Config("bfloat16"), new SaySevenTask(), basePolicy, 0, 0);
        Assert.All(exact.AnchorModel.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(half.AnchorModel.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.All(half.Policy.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));

        var a = exact.Iteration(1);
        var b = half.Iteration(1);
        // Same rollouts (the anchor plays no part in sampling), same policy log-probs; the KL moves by the anchor's rounding only.
        Assert.Equal(a["reward_mean"], b["reward_mean"]);
        Assert.True(double.IsFinite(b["kl"]) && Math.Abs(a["kl"] - b["kl"]) < 0.05, $"kl {a["kl"]} vs {b["kl"]}");
        Assert.NotEqual(a["kl"], b["kl"]);
    }

    [Fact]
    public void TheEmaUpdateOfABfloat16AnchorIsTheExactOneRoundedToBfloat16()
    {
        using var policy = Policy();
        using var start = new DecoderLM(policy.Config, CPU, ScalarType.Float32, 9);
        using var exact = start.Clone();
        using var half = start.Clone(ScalarType.BFloat16);
        EmaAnchor.Update(exact, policy, 0.9);
        EmaAnchor.Update(half, policy, 0.9);
        var exactAnchor = exact.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        var startValues = start.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        var policyValues = policy.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        foreach (var (name, p) in half.named_parameters())
        {
            // Rounding the start, the product η·θ_ema and the sum, each at most a half-ulp (2^-9 relative) of a value bounded by |θ_ema| + |θ|.
            var e = exactAnchor[name];
            var err = (p.to_type(ScalarType.Float32) - e).abs();
            var bound = 3 * Math.Pow(2, -9) * (startValues[name].abs() + policyValues[name].abs()) + 1e-30;
            Assert.True(err.le(bound).all().item<bool>(), $"{name}: max |bf16 − f32| = {err.max().item<float>():g3}");
            Assert.True(err.max().item<float>() > 0 || e.abs().max().item<float>() == 0 || name.EndsWith("norm.weight", StringComparison.Ordinal), $"{name}: no rounding at all");
        }
    }

    [Fact]
    public void ABfloat16AnchorSurvivesACheckpointRoundTrip()
    {
        using var basePolicy = Policy();
        using var trainer = new Trainer(Config("bfloat16"), new SaySevenTask(), basePolicy, 0, 0);
        trainer.Iteration(1);
        var path = Path.Combine(Path.GetTempPath(), $"emapg-bf16-{Guid.NewGuid():N}.bin");
        try
        {
            trainer.SaveCheckpoint(path);
            using var other = new Trainer(Config("bfloat16"), new SaySevenTask(), basePolicy, 0, 0);
            other.LoadCheckpoint(path);
            var saved = trainer.AnchorModel.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
            foreach (var (name, p) in other.AnchorModel.named_parameters())
                Assert.True(p.dtype == ScalarType.BFloat16 && p.eq(saved[name]).all().item<bool>(), name);
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TheScorerGivesFloat32LogProbsOfABfloat16Model(bool fused)
    {
        using var model = Policy();
        using var half = model.Clone(ScalarType.BFloat16);
        var g = new Generator(11);
        var seqs = randint(0, 20, [3, 9], generator: g);
        var attn = ones_like(seqs);
        using var _ = no_grad();
        var a = Scorer.Score(model, seqs, attn, 4, fused: fused);
        var b = Scorer.Score(half, seqs, attn, 4, fused: fused);
        Assert.Equal(ScalarType.Float32, b.LogProbs.dtype);
        double diff = (a.LogProbs - b.LogProbs).abs().max().item<float>();
        Assert.True(diff > 0 && diff < 0.05, $"max |Δ log π| = {diff:g3}");
    }
}

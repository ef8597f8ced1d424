using EmaPg.Divergences;
using EmaPg.Environments.Search;
using EmaPg.Model;
using EmaPg.Objectives;
using EmaPg.Optim;
using EmaPg.Sampling;
using EmaPg.Tasks;
using EmaPg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Environments.Search;

/// <summary>The multi-turn rollout over the library's real model, sampler, scorer and policy update.</summary>
public class SearchRolloutModelTests
{
    private static readonly CharTokenizer Chars = SearchRolloutTests.Chars;
    private static readonly TextCodec Codec = SearchRolloutTests.Codec;

    private static DecoderLM Model(long seed) => new(new ModelConfig
    {
        VocabSize = Chars.VocabSize, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 1, NumAttentionHeads = 4, NumKeyValueHeads = 2,
        MaxPositionEmbeddings = 512, InitializerRange = 0.3,
    }, CPU, ScalarType.Float32, seed);

    private static readonly IRetriever Corpus = Bm25Index.InMemory(
    [
        new Passage("0", "\"Quellport\"\nQuellport is a river town founded by Tessaly Brone."),
        new Passage("1", "\"Tessaly Brone\"\nTessaly Brone was born in Ulmira."),
    ]);

    private static int[] Prompt(string question) => [Chars.BosId, .. Chars.Encode(question)];

    /// <summary>Random-model episodes: their turns are invalid actions, so each gets the corrective observation mid-response.</summary>
    private static (IReadOnlyList<SearchEpisode> Episodes, GenerationResult Gen) Rollout(CausalLM policy, int topK)
    {
        var turns = new SamplerTurnGenerator(policy, Codec, new SamplingOptions { ReturnTopK = topK }, new Generator(11));
        var rollout = new SearchRollout(turns, Corpus, Codec, new SearchEnvOptions { MaxTurns = 1, MaxTurnTokens = 6, MaxResponseTokens = 400 });
        var episodes = rollout.Run([Prompt("where?"), Prompt("who founded Quellport?"), Prompt("x"), Prompt("born in?")]);
        Assert.All(episodes, e => Assert.Contains(0f, e.LossMask.Take(e.Response.Length - 1)));   // an observation sits between turns
        return (episodes, SearchRollout.ToGeneration(episodes, Chars.PadId, CPU));
    }

    [Fact]
    public void StopWhenEndsRowsLikeTheEquivalentStopTokens()
    {
        using var model = Model(3);
        var prompts = new List<int[]> { Prompt("ab"), Prompt("question"), Prompt("q") };
        var even = Enumerable.Range(0, Chars.VocabSize).Where(t => t % 2 == 0).ToArray();
        using var byTokens = Sampler.Generate(model, prompts, new SamplingOptions { MaxNewTokens = 12, StopTokens = even }, new Generator(5));
        using var byCriterion = Sampler.Generate(model, prompts, new SamplingOptions { MaxNewTokens = 12, StopWhen = t => t[^1] % 2 == 0 }, new Generator(5));
        Assert.Equal(byTokens.ResponseTokens, byCriterion.ResponseTokens);
        Assert.Equal(byTokens.Stopped, byCriterion.Stopped);
        Assert.True(TinyModelsSame(byTokens.ResponseMask, byCriterion.ResponseMask));
        Assert.True(TinyModelsSame(byTokens.LogProbs, byCriterion.LogProbs));
        Assert.Contains(true, byCriterion.Stopped);
    }

    private static bool TinyModelsSame(Tensor a, Tensor b) => Tests.Model.TinyModels.Same(a, b);

    [Fact]
    public void RescoringTheEpisodesGivesTheSamplingLogProbsAtTheModelsTokens()
    {
        // The observations were fed to the model exactly where the assembled sequence has them: a full forward pass over
        // prompt + response reproduces each model token's sampling log-prob (KV-cached sampling vs one pass: rounding only).
        using var policy = Model(7);
        var (_, gen) = Rollout(policy, topK: 0);
        using (gen)
        using (no_grad())
        {
            var scored = Scorer.Score(policy, gen).LogProbs;
            var mask = gen.ResponseMask.to_type(ScalarType.Bool);
            var diff = (scored - gen.LogProbs).masked_select(mask).abs().max().item<float>();
            Assert.True(diff < 1e-4, $"max |Δ log p| = {diff}");
            Assert.True(gen.LogProbs.masked_select(mask).lt(0).all().item<bool>());
        }
    }

    private static readonly TrainConfig UpdateConfig = new()
    {
        Seed = 1, InnerUpdates = 1, Minibatches = 1, LearningRate = 1e-2, KlEstimator = "topk-reverse", KlTopK = 4, KlBeta = 0.5, GradClip = 0,
    };

    /// <summary>One policy update from a clone of <paramref name="policy"/>: its gradient (the update leaves it in .grad) and the parameters after the step.</summary>
    private static (Tensor[] Grads, Tensor[] Params) Update(CausalLM policy, Experience x, bool fused)
    {
        var clone = policy.Clone();
        clone.train();
        using var opt = new AdamW(clone.parameters(), UpdateConfig.LearningRate, weightDecay: 0);
        var kl = Estimators.Get(UpdateConfig.KlEstimator);
        var updater = new PolicyUpdater(UpdateConfig, clone, opt, kl, new EstimatorOptions().Validated(), LossAggregationMode.TokenMean,
            PolicyLosses.Get("clip-higher"), checkFinite: true, fused);
        var stats = updater.Update(x, 1);
        Assert.Equal(1, stats.Applied);
        return (clone.parameters().Select(p => p.grad!.clone()).ToArray(), clone.parameters().Select(p => p.detach().clone()).ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ObservationTokensLogProbsDoNotChangeThePolicyGradient(bool fused)
    {
        using var policy = Model(7);
        using var anchor = Model(8);
        var (episodes, gen) = Rollout(policy, topK: UpdateConfig.KlTopK);
        Tensor oldLogp, anchorLogp, anchorLogpQ;
        using (no_grad())
        {
            oldLogp = Scorer.Score(policy, gen).LogProbs;
            var a = Scorer.Score(anchor, gen, gatherIndices: gen.TopKIndices);
            (anchorLogp, anchorLogpQ) = (a.LogProbs, a.GatheredLogProbs!);
        }
        var x = new Experience
        {
            Problems = episodes.Select(_ => new Problem("q", "a", "a")).ToList(), Generation = gen, Sequences = gen.Sequences(), AttentionMask = gen.AttentionMask(),
            LossMask = gen.ResponseMask, SamplingLogp = gen.LogProbs, OldLogp = oldLogp, AnchorLogp = anchorLogp, Q = gen.TopKIndices, AnchorLogpQ = anchorLogpQ,
            Rewards = [1, 0, 0, 1], Advantages = tensor(new float[] { 0.9f, -1.1f, -0.6f, 0.8f }), SampledTokens = 0, SampleSeconds = 0,
        };
        // Every per-token input the update reads, changed (by up to ±3 nats) wherever the loss mask is 0: the observation
        // tokens between turns and the padding after each episode. The importance ratios and the anchor's log-probs there
        // then differ wildly, yet no gradient may.
        var off = gen.ResponseMask.eq(0);
        var g = new Generator(99);
        Tensor Perturb(Tensor t) => t + off.reshape([.. off.shape, .. Enumerable.Repeat(1L, (int)(t.dim() - off.dim()))]).to_type(t.dtype) * (rand(t.shape, generator: g) * 6 - 3);
        var y = x with { OldLogp = Perturb(x.OldLogp), AnchorLogp = Perturb(x.AnchorLogp), SamplingLogp = Perturb(x.SamplingLogp), AnchorLogpQ = Perturb(x.AnchorLogpQ!) };
        Assert.True(y.OldLogp.masked_select(off).ne(x.OldLogp.masked_select(off)).all().item<bool>());

        var (gx, px) = Update(policy, x, fused);
        var (gy, py) = Update(policy, y, fused);
        Assert.Contains(gx, t => t.abs().sum().item<float>() > 0);
        for (int i = 0; i < gx.Length; i++)
        {
            Assert.True(TinyModelsSame(gx[i], gy[i]), $"gradient of parameter {i} changed");
            Assert.True(TinyModelsSame(px[i], py[i]), $"parameter {i} changed");
        }

        // Control: the same change at ONE of the model's own tokens does change the gradient.
        var own = gen.ResponseMask.nonzero()[0];
        var z = x with { AnchorLogp = x.AnchorLogp.clone().index_put_(x.AnchorLogp[own[0], own[1]] - 2.0f, own[0], own[1]) };
        var (gz, _) = Update(policy, z, fused);
        Assert.Contains(Enumerable.Range(0, gx.Length), i => !TinyModelsSame(gx[i], gz[i]));
    }
}

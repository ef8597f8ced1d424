using EmaPg.Sampling;
using EmaPg.Tests.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Sampling;

public class SamplerTests
{
    private static readonly int[][] Prompts = [[1, 3, 4], [1, 5, 6, 7, 8], [1], [1, 9, 9]];

    private static SamplingOptions Options(double temperature = 1.0, int topK = 0) => new()
    {
        Temperature = temperature, MaxNewTokens = 12, StopTokens = [2], PadToken = 0, ReturnTopK = topK,
    };

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.7)]
    public void SamplingLogProbsEqualTeacherForcedLogProbs(double temperature)
    {
        using var scope = NewDisposeScope();
        using var model = TinyModels.Float64();
        AssertStepsMatchTeacherForcing(model, seed: 42, temperature, k: 3);
    }

    /// <summary>
    /// Generation's log-probs and top-k (indices and log-probs) equal teacher forcing's through log_softmax on real
    /// positions, and the scorer's gathered log-probs at those indices are the k largest of its full table.
    /// </summary>
    private static void AssertStepsMatchTeacherForcing(EmaPg.Model.CausalLM model, ulong seed, double temperature, int k)
    {
        using var gen = new Generator(seed, CPU);
        using var result = Sampler.Generate(model, Prompts, Options(temperature, topK: k), gen);
        using var score = Scorer.Score(model, result, temperature, gatherIndices: result.TopKIndices, topK: k, returnFull: true);
        var mask = result.ResponseMask;
        var diff = ((score.LogProbs.to_type(ScalarType.Float32) - result.LogProbs) * mask).abs().max().item<float>();
        Assert.True(diff < 1e-5, $"max diff {diff}");
        var same = score.TopKIndices!.eq(result.TopKIndices!).all(-1).logical_or(mask.eq(0));
        Assert.True(same.all().item<bool>());
        var topDiff = ((score.GatheredLogProbs!.to_type(ScalarType.Float32) - result.TopKLogProbs!).abs() * mask.unsqueeze(-1)).max().item<float>();
        Assert.True(topDiff < 1e-5, $"top-k log-prob diff {topDiff}");
        var expected = score.FullLogProbs!.topk(k, dim: -1).values;
        var gdiff = ((score.GatheredLogProbs! - expected).abs() * mask.unsqueeze(-1)).max().item<double>();
        Assert.True(gdiff < 1e-12, $"gathered diff {gdiff}");
    }

    [Fact]
    public void ResponseMaskKeepsTheStopTokenAndZeroesTheRest()
    {
        using var scope = NewDisposeScope();
        using var model = TinyModels.Float64();
        using var gen = new Generator(7, CPU);
        // Very peaked logits would make this flaky; with 13 tokens and 12 steps most rows stop.
        using var result = Sampler.Generate(model, Enumerable.Repeat(new[] { 1, 3 }, 16).ToArray(), Options(), gen);
        var ids = result.ResponseIds.data<long>().ToArray();
        var mask = result.ResponseMask.data<float>().ToArray();
        var lp = result.LogProbs.data<float>().ToArray();
        int width = (int)result.ResponseLength;
        Assert.Contains(true, result.Stopped);
        for (int b = 0; b < 16; b++)
        {
            var toks = result.ResponseTokens[b];
            if (result.Stopped[b]) Assert.Equal(2, toks[^1]);
            Assert.DoesNotContain(2, toks.SkipLast(1));
            for (int j = 0; j < width; j++)
            {
                Assert.Equal(j < toks.Length ? 1f : 0f, mask[b * width + j]);
                if (j >= toks.Length) { Assert.Equal(0, ids[b * width + j]); Assert.Equal(0f, lp[b * width + j]); }
                else { Assert.Equal(toks[j], ids[b * width + j]); Assert.True(lp[b * width + j] < 0); }
            }
        }
    }

    [Fact]
    public void SameSeedSameSamplesDifferentSeedDifferentSamples()
    {
        using var scope = NewDisposeScope();
        using var model = TinyModels.Float64();
        Tensor Run(ulong seed)
        {
            using var gen = new Generator(seed, CPU);
            using var r = Sampler.Generate(model, Prompts, Options(), gen);
            return r.ResponseIds.clone();
        }
        var a = Run(1);
        var b = Run(1);
        var c = Run(2);
        Assert.True(TinyModels.Same(a, b));
        Assert.False(TinyModels.Same(a, c));
    }

    [Fact]
    public void GreedyPicksTheArgmaxAndFiltersRestrictTheSupport()
    {
        using var scope = NewDisposeScope();
        using var model = TinyModels.Float64();
        using var greedy = Sampler.Generate(model, Prompts, Options() with { Greedy = true, ReturnTopK = 1 });
        var top1 = greedy.TopKIndices!.squeeze(-1);
        Assert.True(top1.eq(greedy.ResponseIds).logical_or(greedy.ResponseMask.eq(0)).all().item<bool>());

        var logits = tensor(new double[] { 3.0, 2.0, 1.0, 0.0 }, [1, 4]);
        var k2 = Sampler.SamplingLogProbs(logits, Options() with { FilterTopK = 2 }).exp();
        Assert.Equal(new[] { 0.731, 0.269, 0, 0 }, k2.data<double>().ToArray().Select(v => Math.Round(v, 3)));
        // p = 0.7: the top token has 0.644 < 0.7, so the second is kept too, the rest dropped.
        var p = Sampler.SamplingLogProbs(logits, Options() with { FilterTopP = 0.7 }).exp();
        Assert.Equal(new[] { 0.731, 0.269, 0, 0 }, p.data<double>().ToArray().Select(v => Math.Round(v, 3)));
    }

    [Fact]
    public void ScorerGradientsFlowToParameters()
    {
        using var scope = NewDisposeScope();
        using var model = TinyModels.Float64();
        using var gen = new Generator(3, CPU);
        using var result = Sampler.Generate(model, Prompts, Options(), gen);
        using var score = Scorer.Score(model, result);
        (score.LogProbs * result.ResponseMask.to_type(ScalarType.Float64)).sum().backward();
        Assert.All(model.parameters(), p => Assert.True(p.grad is not null && p.grad.abs().sum().item<double>() > 0));
    }

    /// <summary>
    /// Large vocabularies draw by a two-level inverse CDF: over 20,000 draws from a distribution with mass on a few columns
    /// spread across the vocabulary (first, last, both sides of block boundaries, neighbours of zero columns), each column's
    /// frequency is within 4.5 standard errors of its probability, and zero-probability columns are never drawn.
    /// </summary>
    [Fact]
    public void LargeVocabularyDrawsFollowTheDistributionExactly()
    {
        using var scope = torch.NewDisposeScope();
        int v = Sampler.InverseCdfFromVocab + 7;   // 4103: blocks of 65 columns, the last one 8 wide
        var cols = new long[] { 0, 1, 64, 65, 2048, 2050, v - 9, v - 8, v - 2, v - 1 };
        var p = new double[] { 0.05, 0.2, 0.04, 0.06, 0.15, 0.2, 0.03, 0.02, 1e-3, 0.249 };
        var probs = torch.zeros(1000, v);
        for (int j = 0; j < cols.Length; j++) probs[.., cols[j]] = torch.tensor((float)p[j]);
        var gen = new torch.Generator(7);
        var counts = new long[v];
        for (int rep = 0; rep < 20; rep++)
            foreach (var t in Sampler.Draw(probs, gen).data<long>()) counts[t]++;
        const int n = 20000;
        for (int j = 0; j < cols.Length; j++)
        {
            double want = p[j] / p.Sum(), se = Math.Sqrt(want * (1 - want) / n);
            Assert.True(Math.Abs(counts[cols[j]] / (double)n - want) <= 4.5 * se, $"column {cols[j]}: {counts[cols[j]]} of {n}, expected {want * n:F0}");
        }
        Assert.Equal(n, cols.Sum(c => counts[c]));
    }

    /// <summary>
    /// The large-vocabulary step (one max, one in-place exp, a two-level inverse CDF; the token's log-prob as log weight − log Z,
    /// the top-k through <see cref="Sampler.BlockTopK"/>) returns the same
    /// sampling log-probs and top-k as teacher forcing through log_softmax, at |V| = 4103 and temperatures 1 and 0.7.
    /// </summary>
    [Theory]
    [InlineData(1.0)]
    [InlineData(0.7)]
    public void LargeVocabularyStepsGiveTheTeacherForcedLogProbsAndTopK(double temperature)
    {
        using var scope = NewDisposeScope();
        using var model = new EmaPg.Model.DecoderLM(TinyModels.Config() with { VocabSize = Sampler.InverseCdfFromVocab + 7 }, CPU, ScalarType.Float64, 3);
        AssertStepsMatchTeacherForcing(model, seed: 11, temperature, k: 5);
    }

    /// <summary>The top-k through ⌈√V⌉-column blocks is torch.topk's, values and indices, with the top k spread over blocks,
    /// packed into one block, and in the short last block; k too large for blocks to help falls back to torch.topk.</summary>
    [Theory]
    [InlineData(4103, 5)]
    [InlineData(151936, 32)]
    [InlineData(1000, 40)]
    public void BlockTopKIsTorchTopK(int v, int k)
    {
        using var scope = NewDisposeScope();
        var x = randn([4, v], generator: new Generator(5));
        x[1, TensorIndex.Slice(0, k)] = 50 + arange(k, dtype: ScalarType.Float32);          // the whole top k in the first block
        x[2, TensorIndex.Slice(v - 3, v)] = tensor(new float[] { 70, 60, 80 });             // the largest ones in the last block
        var (want, wantAt) = x.topk(k, dim: -1);
        var (got, gotAt) = Sampler.BlockTopK(x, k);
        Assert.True(want.equal(got).all().item<bool>(), "values");
        Assert.True(wantAt.equal(gotAt).all().item<bool>(), "indices");
    }
}

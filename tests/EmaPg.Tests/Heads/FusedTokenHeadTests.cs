using EmaPg.Divergences;
using EmaPg.Heads;
using EmaPg.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Heads;

/// <summary>
/// The fused, chunked token head against the unfused reference (full logits, log_softmax, gather), float64:
/// values and autograd gradients w.r.t. h and W of every output, across chunk sizes that do and do not divide |V|
/// (1, 5, 7 vs |V| = 23, and chunks ≥ |V|), k = 0 and k = |V|, temperature ≠ 1; then every loss that can run from
/// the head's outputs (each registry estimator that does not need full logits, clip-higher, entropy) computed from
/// fused and from unfused outputs. Tolerance 1e-9 relative, as the estimator tests.
/// </summary>
public class FusedTokenHeadTests
{
    private const double Tol = 1e-9;
    private const int N = 7, H = 5, V = 23;

    private static void Close(Tensor want, Tensor got, string what) => HeadRollout.Close(want, got, what, Tol);

    private sealed record Problem(Tensor Hidden, Tensor Weight, Tensor Targets, Tensor? Q);

    private static Problem MakeProblem(int k, int seed)
    {
        var g = new Generator((ulong)seed);
        var h = randn(N, H, dtype: float64, generator: g);
        var w = randn(V, H, dtype: float64, generator: g) * 1.3;
        var targets = randint(0, V, [N], dtype: int64, generator: g);
        // Random indices with repeats and both chunk edges: duplicates must accumulate like gather's gradient does.
        var q = k == 0 ? empty(N, 0, dtype: int64) : randint(0, V, [N, k], dtype: int64, generator: g);
        return new Problem(h, w, targets, q);
    }

    public static IEnumerable<object[]> Cases()
    {
        foreach (var chunk in new[] { 1, 5, 7, 23, 64 })
            foreach (var k in new[] { 0, 3, V })
                foreach (var topK in new[] { 0, 4, V })
                    foreach (var temp in new[] { 1.0, 0.7 })
                        yield return [chunk, k, topK, temp];
        yield return [5, 3, 4, 2.5];   // q given as null below is a separate test
    }

    private static (TokenHeadOutputs Out, Tensor H, Tensor W) Run(bool fused, Problem p, int topK, double temp, int chunk, bool withQ = true)
    {
        var h = p.Hidden.detach().clone().requires_grad_(true);
        var w = p.Weight.detach().clone().requires_grad_(true);
        var q = withQ ? p.Q : null;
        var o = fused ? TokenHead.Fused(h, w, p.Targets, q, temp, topK, chunk) : TokenHead.Unfused(h, w, p.Targets, q, temp, topK);
        return (o, h, w);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ValuesAndGradientsOfEveryOutputEqualTheUnfusedOnes(int chunk, int k, int topK, double temp)
    {
        using var scope = NewDisposeScope();
        var p = MakeProblem(k, 11 + chunk + 3 * k + 5 * topK);
        var (rf, _, _) = Run(true, p, topK, temp, chunk);
        var (ru, _, _) = Run(false, p, topK, temp, chunk);
        Close(ru.LogpTarget, rf.LogpTarget, "log π(target)");
        Close(ru.LogZ, rf.LogZ, "log Z");
        Close(ru.Entropy, rf.Entropy, "entropy");
        Close(ru.LogpQ!, rf.LogpQ!, "log π(q)");
        if (topK == 0)
        {
            Assert.Null(rf.TopKIndices);
            Assert.Null(rf.TopKLogp);
        }
        else
        {
            Assert.Equal(ru.TopKIndices!.data<long>().ToArray(), rf.TopKIndices!.data<long>().ToArray());
            Assert.False(rf.TopKIndices.requires_grad);
            Close(ru.TopKLogp!, rf.TopKLogp!, "log π(top-k)");
        }

        // Each output alone, then all together, weighted by fixed random cotangents.
        var names = new List<string> { "target", "logZ", "entropy", "q", "top", "all" };
        if (topK == 0) names.Remove("top");
        foreach (var which in names)
        {
            var g = new Generator(99);
            Tensor Loss(TokenHeadOutputs o)
            {
                var gg = new Generator(99);
                Tensor W(Tensor t) => (t * randn(t.shape, dtype: float64, generator: gg)).sum();
                return which switch
                {
                    "target" => W(o.LogpTarget),
                    "logZ" => W(o.LogZ),
                    "entropy" => W(o.Entropy),
                    "q" => W(o.LogpQ!),
                    "top" => W(o.TopKLogp!),
                    "all" => W(o.LogpTarget) + W(o.LogZ) + W(o.Entropy) + W(o.LogpQ!) + (o.TopKLogp is null ? zeros(1, dtype: float64).sum() : W(o.TopKLogp)),
                    _ => throw new ArgumentOutOfRangeException(nameof(which)),
                };
            }
            var (of, hf, wf) = Run(true, p, topK, temp, chunk);
            var (ou, hu, wu) = Run(false, p, topK, temp, chunk);
            var lf = Loss(of);
            var lu = Loss(ou);
            Close(lu, lf, $"{which}: loss");
            if (which == "q" && k == 0) continue;   // no index set: nothing to differentiate
            lf.backward();
            lu.backward();
            Close(hu.grad!, hf.grad!, $"{which}: ∂/∂h");
            Close(wu.grad!, wf.grad!, $"{which}: ∂/∂W");
        }
    }

    [Fact]
    public void WithoutQOrTopKOnlyThePerTokenScalarsAreReturned()
    {
        using var scope = NewDisposeScope();
        var p = MakeProblem(3, 5);
        var (rf, hf, wf) = Run(true, p, 0, 1.3, 6, withQ: false);
        var (ru, hu, wu) = Run(false, p, 0, 1.3, 6, withQ: false);
        Assert.Null(rf.LogpQ);
        Assert.Null(rf.TopKIndices);
        (rf.LogpTarget.sum() - rf.Entropy.sum() * 0.3 + rf.LogZ.sum() * 0.1).backward();
        (ru.LogpTarget.sum() - ru.Entropy.sum() * 0.3 + ru.LogZ.sum() * 0.1).backward();
        Close(hu.grad!, hf.grad!, "∂/∂h");
        Close(wu.grad!, wf.grad!, "∂/∂W");
    }

    [Fact]
    public void OnlyTheInputsThatRequireGradientGetOne()
    {
        using var scope = NewDisposeScope();
        var p = MakeProblem(3, 6);
        var w = p.Weight.detach().clone().requires_grad_(true);
        var o = TokenHead.Fused(p.Hidden, w, p.Targets, p.Q, 1.0, 0, 4);
        o.LogpTarget.sum().backward();
        var wu = p.Weight.detach().clone().requires_grad_(true);
        TokenHead.Unfused(p.Hidden, wu, p.Targets, p.Q).LogpTarget.sum().backward();
        Close(wu.grad!, w.grad!, "∂/∂W with h constant");
        Assert.Null(p.Hidden.grad);

        using (no_grad())
        {
            var g = TokenHead.Fused(p.Hidden, p.Weight, p.Targets, p.Q, 1.0, 2, 4);
            Assert.False(g.LogpTarget.requires_grad);
        }
    }

    [Fact]
    public void ANonContiguousWeightGivesTheSameGradient()
    {
        using var scope = NewDisposeScope();
        var p = MakeProblem(3, 8);
        var wf = p.Weight.t().contiguous().requires_grad_(true);   // [H, V] leaf, used as its transpose [V, H]
        var wu = p.Weight.t().contiguous().requires_grad_(true);
        TokenHead.Fused(p.Hidden, wf.t(), p.Targets, p.Q, 0.9, 2, 6).Entropy.sum().backward();
        TokenHead.Unfused(p.Hidden, wu.t(), p.Targets, p.Q, 0.9, 2).Entropy.sum().backward();
        Close(wu.grad!, wf.grad!, "∂/∂Wᵀ");
    }

    [Theory]
    [InlineData("targets")]
    [InlineData("q")]
    [InlineData("shape")]
    [InlineData("topK")]
    [InlineData("temperature")]
    [InlineData("chunk")]
    public void BadInputsAreRejectedNamingThem(string what)
    {
        using var scope = NewDisposeScope();
        var p = MakeProblem(3, 7);
        var e = Assert.Throws<ArgumentException>(() => what switch
        {
            "targets" => TokenHead.Fused(p.Hidden, p.Weight, full(N, (long)V, dtype: int64)),
            "q" => TokenHead.Fused(p.Hidden, p.Weight, p.Targets, full(N, 2, -1L, dtype: int64)),
            "shape" => TokenHead.Fused(p.Hidden, p.Weight.narrow(1, 0, 3), p.Targets),
            "topK" => TokenHead.Fused(p.Hidden, p.Weight, p.Targets, topK: V + 1),
            "temperature" => TokenHead.Fused(p.Hidden, p.Weight, p.Targets, temperature: 0),
            "chunk" => TokenHead.Fused(p.Hidden, p.Weight, p.Targets, chunkSize: 0),
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        });
        Assert.Contains(what == "shape" ? "hidden" : what == "chunk" ? "chunkSize" : what, e.Message);
    }

    // ---- Losses from the head's outputs: fused = unfused, values and gradients ----

    public static IEnumerable<object[]> LossCases()
    {
        foreach (var e in Estimators.All().Where(e => !e.NeedsFullLogits))
            foreach (var (chunk, temp, clip) in new[] { (5, 1.0, false), (7, 0.8, true) })
                yield return [e.Name, chunk, temp, clip];
    }

    private static HeadRollout MakeRollout(IndexSource src, int k, double temp, int seed) => HeadRollout.Make(N, H, V, src, k, temp, seed, advantages: N);

    [Theory]
    [MemberData(nameof(LossCases))]
    public void EveryEstimatorWithoutFullLogitsGivesTheSameLossAndGradientFromFusedOutputs(string name, int chunk, double temp, bool clip)
    {
        using var scope = NewDisposeScope();
        var est = Estimators.Get(name);
        var opts = clip ? new EstimatorOptions { SMin = 0.5, SMax = 1.5 } : EstimatorOptions.Default;
        var r = MakeRollout(est.Index, 6, temp, 31 + chunk);
        (Tensor Kl, Tensor H, Tensor W) Kl(bool fused)
        {
            var h = r.Hidden.detach().clone().requires_grad_(true);
            var w = r.Weight.detach().clone().requires_grad_(true);
            var o = fused ? TokenHead.Fused(h, w, r.Sampled, r.Q, temp, 0, chunk) : TokenHead.Unfused(h, w, r.Sampled, r.Q, temp);
            var x = KlInputs.FromHead(o, r.Sampled, r.SamplingLogp, r.AnchorLogp, r.Q, r.AnchorLogpQ);
            return (est.Compute(x, opts), h, w);
        }
        var (kf, hf, wf) = Kl(true);
        var (ku, hu, wu) = Kl(false);
        Close(ku, kf, $"{name}: per-token estimate");
        var weights = randn(N, dtype: float64, generator: new Generator(5));
        (kf * weights).sum().backward();
        (ku * weights).sum().backward();
        Close(hu.grad!, hf.grad!, $"{name}: ∂/∂h");
        Close(wu.grad!, wf.grad!, $"{name}: ∂/∂W");
    }

    [Theory]
    [InlineData(5, 1.0)]
    [InlineData(23, 1.0)]
    [InlineData(4, 0.6)]
    public void ClipHigherEntropyAndTheKlRegularisedLossGiveTheSameGradientFromFusedOutputs(int chunk, double temp)
    {
        using var scope = NewDisposeScope();
        var r = MakeRollout(IndexSource.SamplingPolicy, 5, temp, 77 + chunk);
        var mask = ones(N, 1, dtype: ScalarType.Bool);
        var noClip = ones(N, 1, dtype: float64);
        var terms = new[] { "clip-higher", "entropy", "loss" };
        foreach (var term in terms)
        {
            (Tensor Value, Tensor Mask, Tensor H, Tensor W) Loss(bool fused)
            {
                var h = r.Hidden.detach().clone().requires_grad_(true);
                var w = r.Weight.detach().clone().requires_grad_(true);
                var o = fused ? TokenHead.Fused(h, w, r.Sampled, r.Q, temp, 0, chunk) : TokenHead.Unfused(h, w, r.Sampled, r.Q, temp);
                var logp = o.LogpTarget.unsqueeze(1);   // [B = N, L = 1]
                var old = r.OldLogp.unsqueeze(1);
                switch (term)
                {
                    case "clip-higher":
                        var (j, m) = GrpoClipHigher.Compute(logp, old, r.Advantages);
                        return (j.sum(), m, h, w);
                    case "entropy":
                        return (o.Entropy.sum(), noClip, h, w);
                    default:
                        var kl = Estimators.Get("topk-reverse").Compute(KlInputs.FromHead(o, r.Sampled, r.SamplingLogp, r.AnchorLogp, r.Q, r.AnchorLogpQ));
                        var t = KlRegularizedLoss.Compute(logp, old, r.Advantages, mask, kl.unsqueeze(1), 0.1, LossAggregationMode.TokenMean);
                        return (t.Loss - 0.01 * LossAggregation.Aggregate(o.Entropy.unsqueeze(1), mask, LossAggregationMode.TokenMean), noClip, h, w);
                }
            }
            var (vf, mf, hf, wf) = Loss(true);
            var (vu, mu, hu, wu) = Loss(false);
            Close(vu, vf, $"{term}: value");
            Assert.Equal(mu.data<double>().ToArray(), mf.data<double>().ToArray());
            // The clip mask really masks some tokens here, so both of its branches are exercised.
            if (term == "clip-higher") Assert.InRange(mu.sum().item<double>(), 1, N - 1);
            vf.backward();
            vu.backward();
            Close(hu.grad!, hf.grad!, $"{term}: ∂/∂h");
            Close(wu.grad!, wf.grad!, $"{term}: ∂/∂W");
        }
    }
}

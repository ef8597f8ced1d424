using EmaPg.Audit;
using EmaPg.Divergences;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Divergences;

/// <summary>k = 0 reduces Top-k to sampled KL and k = |V| to exact KL, sample by sample; the correction
/// leaves the gradient variance of the paper's versions unchanged; unbiasedness does not need q = top-k.</summary>
public class TopkLimitTests
{
    private static (Tensor Est, Tensor Z) PerSample(string name, CategoricalProblem p, int k)
    {
        var e = Estimators.Get(name);
        var (x, z, _) = ExactExpectation.Batch(e, p, ExactExpectation.IndexSet(e, p, k));
        return (e.Compute(x), z);
    }

    private static double[] Grad(Tensor est, int row, Tensor z) =>
        autograd.grad([est[row]], [z], retain_graph: true)[0].data<double>().ToArray();

    [Theory]
    [InlineData("topk-reverse", "k4", false)]
    [InlineData("topk-reverse", "k4", true)]
    [InlineData("topk-reverse-paper", "k4", true)]
    [InlineData("topk-forward", "k5", false)]
    [InlineData("topk-forward", "k5", true)]
    [InlineData("topk-forward-paper", "k5", true)]
    [InlineData("topk-pearson", "kf-pearson", true)]
    public void KZeroIsTheSampledEstimatorSampleBySample(string topk, string sampled, bool off)
    {
        using var scope = NewDisposeScope();
        var p = CategoricalProblem.Random(12, off, 3);
        var (a, za) = PerSample(topk, p, 0);
        var (b, zb) = PerSample(sampled, p, 0);
        for (int i = 0; i < 12; i++)
        {
            Assert.Equal(b[i].item<double>(), a[i].item<double>(), 12);
            Assert.True(ExactExpectation.RelativeError(Grad(a, i, za), Grad(b, i, zb)) < 1e-12);
        }
    }

    [Fact]
    public void K3PlusPlusAndK4HaveTheSamePerSampleGradient()
    {
        // Eq. 91 and eq. 94 both reduce to ℓ(p)∇log π(p): identical gradient variance, different values.
        using var scope = NewDisposeScope();
        var p = CategoricalProblem.Random(9, true, 8);
        var (a, za) = PerSample("k3pp", p, 0);
        var (b, zb) = PerSample("k4", p, 0);
        bool valuesDiffer = false;
        for (int i = 0; i < 9; i++)
        {
            Assert.True(ExactExpectation.RelativeError(Grad(a, i, za), Grad(b, i, zb)) < 1e-12);
            valuesDiffer |= Math.Abs(a[i].item<double>() - b[i].item<double>()) > 1e-6;
        }
        Assert.True(valuesDiffer);
    }

    [Theory]
    [InlineData("topk-reverse", "exact-reverse")]
    [InlineData("topk-forward", "exact-forward")]
    [InlineData("topk-hellinger", "exact-hellinger")]
    public void KEqualsVocabIsExactForEverySample(string topk, string exact)
    {
        using var scope = NewDisposeScope();
        var p = CategoricalProblem.Random(10, true, 5);
        var (a, za) = PerSample(topk, p, 10);
        var (b, zb) = PerSample(exact, p, 10);
        var gExact = Grad(b, 0, zb);
        for (int i = 0; i < 10; i++)
        {
            Assert.True(ExactExpectation.RelativeError(a[i].item<double>(), b[0].item<double>()) < 1e-12);
            Assert.True(ExactExpectation.RelativeError(Grad(a, i, za), gExact) < 1e-12);
        }
    }

    [Theory]
    [InlineData("topk-reverse", "topk-reverse-paper", 4, false)]
    [InlineData("topk-reverse", "topk-reverse-paper", 8, true)]
    [InlineData("topk-forward", "topk-forward-paper", 4, false)]
    [InlineData("topk-forward", "topk-forward-paper", 8, true)]
    public void CorrectionDoesNotRaiseGradientVariance(string ours, string paper, int k, bool off)
    {
        var p = CategoricalProblem.Random(24, off, 11);
        var vo = ExactExpectation.GradientVariance(Estimators.Get(ours), p, k, EstimatorOptions.Default);
        var vp = ExactExpectation.GradientVariance(Estimators.Get(paper), p, k, EstimatorOptions.Default);
        Assert.True(vp > 0);
        Assert.True(Math.Abs(vo - vp) <= 1e-10 * vp, $"variance ours {vo:R} vs paper {vp:R}");
    }

    [Fact]
    public void TopkIsUnbiasedForAnyIndexSetNotOnlyTopK()
    {
        using var scope = NewDisposeScope();
        var p = CategoricalProblem.Random(20, true, 9);
        var pi = ClosedForms.Softmax(p.PolicyLogits);
        var r = ClosedForms.Softmax(p.AnchorLogits);
        long[] q = [19, 2, 7, 11, 3];   // an arbitrary set, deliberately not the top-k
        foreach (var (name, value, grad) in new[]
                 {
                     ("topk-reverse", ClosedForms.ReverseKl(pi, r), ClosedForms.ReverseKlGrad(pi, r)),
                     ("topk-forward", ClosedForms.ForwardKl(pi, r), ClosedForms.ForwardKlGrad(pi, r)),
                 })
        {
            var e = Estimators.Get(name);
            var (x, z, ps) = ExactExpectation.Batch(e, p, q);
            var mean = (ps * e.Compute(x)).sum();
            mean.backward();
            Assert.True(ExactExpectation.RelativeError(mean.item<double>(), value) < 1e-9);
            Assert.True(ExactExpectation.RelativeError(z.grad!.data<double>().ToArray(), grad) < 1e-9);
        }
    }
}

using EmaPg.Audit;
using EmaPg.Divergences;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Divergences;

public class FDivergenceTests
{
    /// <summary>Table 5's estimator column g_f(w), written out by hand from the paper.</summary>
    private static double Table5G(string name, double w, double alpha) => name switch
    {
        "pearson" => (1 - w) * (1 - w) / w,
        "neyman" => (1 - w) * (1 - w),
        "hellinger" => 0.5 * Math.Pow(1 - Math.Sqrt(w), 2),
        "js" => 0.5 * (-Math.Log(w) - (1 + w) * Math.Log((1 + w) / (2 * w))),
        "tv" => 0.5 * Math.Abs(1 - w),
        "alpha" => (Math.Pow(w, 1 - alpha) + (alpha - 1) * w - alpha) / (alpha * (alpha - 1)),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [InlineData(0.5)]
    [InlineData(2.0)]
    [InlineData(-1.0)]
    public void GOfLogTMatchesTable5EstimatorColumn(double alpha)
    {
        using var scope = NewDisposeScope();
        foreach (var f in FDivergence.Table5(alpha))
            foreach (var w in new[] { 0.03, 0.4, 0.97, 1.0, 1.8, 25.0 })
            {
                double got = f.GOfLogT(tensor(-Math.Log(w), dtype: float64)).item<double>();
                double want = Table5G(f.Name, w, alpha);
                Assert.True(Math.Abs(got - want) <= 1e-12 * Math.Max(1, Math.Abs(want)), $"{f.Name} w={w}: {got} vs {want}");
            }
    }

    [Fact]
    public void FPrimeMatchesFiniteDifferencesOfF()
    {
        using var scope = NewDisposeScope();
        var all = FDivergence.Table5(0.5).Concat([FDivergence.ReverseKl, FDivergence.ForwardKl, FDivergence.AlphaDivergence(3.0)]);
        foreach (var f in all)
            foreach (var t in new[] { 0.2, 0.7, 1.6, 4.0 })
            {
                const double h = 1e-6;
                double F(double x) => f.FOfLogT(tensor(Math.Log(x), dtype: float64)).item<double>();
                double fd = (F(t + h) - F(t - h)) / (2 * h);
                double fp = f.FPrimeOfT(tensor(t, dtype: float64)).item<double>();
                Assert.True(Math.Abs(fd - fp) < 1e-7 * Math.Max(1, Math.Abs(fp)), $"{f.Name} at t={t}: f' {fp} vs FD {fd}");
            }
    }

    [Fact]
    public void ClosedFormGradientFormulaAgreesWithHandWrittenKlGradients()
    {
        var p = CategoricalProblem.Random(13, false, 2);
        var pi = ClosedForms.Softmax(p.PolicyLogits);
        var r = ClosedForms.Softmax(p.AnchorLogits);
        var rev = ExactExpectation.ClosedForm(FDivergence.ReverseKl, p);
        var fwd = ExactExpectation.ClosedForm(FDivergence.ForwardKl, p);
        Assert.True(ExactExpectation.RelativeError(rev.Value, ClosedForms.ReverseKl(pi, r)) < 1e-12);
        Assert.True(ExactExpectation.RelativeError(rev.Gradient, ClosedForms.ReverseKlGrad(pi, r)) < 1e-12);
        Assert.True(ExactExpectation.RelativeError(fwd.Value, ClosedForms.ForwardKl(pi, r)) < 1e-12);
        Assert.True(ExactExpectation.RelativeError(fwd.Gradient, ClosedForms.ForwardKlGrad(pi, r)) < 1e-12);
    }

    public static IEnumerable<object[]> Cases()
    {
        foreach (var f in new[] { "pearson", "neyman", "hellinger", "js", "tv", "alpha" })
            foreach (var off in new[] { false, true })
                foreach (var k in new[] { 0, 3, 9 })
                    yield return [f, off, k];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SampledAndTopkFDivergencesAreUnbiasedInValueAndGradient(string f, bool off, int k)
    {
        var p = CategoricalProblem.Random(18, off, 21 + k);
        var target = Estimators.Get($"exact-{f}").Target;
        var want = ExactExpectation.ClosedForm(target, p);
        foreach (var name in new[] { $"exact-{f}", $"kf-{f}", $"topk-{f}" })
        {
            var got = ExactExpectation.Expect(Estimators.Get(name), p, k, EstimatorOptions.Default);
            Assert.True(ExactExpectation.RelativeError(got.Value, want.Value) < 1e-9, $"{name} value");
            Assert.True(ExactExpectation.RelativeError(got.Gradient, want.Gradient) < 1e-9, $"{name} gradient");
        }
    }

    /// <summary>
    /// Finding 3's claim: eq. 122 (Top-k f-divergence, Kf⁺⁺ masked to the tail without a baseline) is unbiased for reverse KL
    /// (f = t log t) and forward KL (f = −log t) too, with any index set: top-k of the sampling policy and of the anchor,
    /// on- and off-policy, against the hand-written closed forms.
    /// </summary>
    [Theory]
    [InlineData(false, 0)]
    [InlineData(false, 4)]
    [InlineData(true, 4)]
    [InlineData(true, 11)]
    [InlineData(true, 18)]
    public void TopkFDivergenceIsUnbiasedForReverseAndForwardKl(bool off, int k)
    {
        var p = CategoricalProblem.Random(18, off, 40 + k);
        var pi = ClosedForms.Softmax(p.PolicyLogits);
        var r = ClosedForms.Softmax(p.AnchorLogits);
        foreach (var (f, value, grad) in new[] { (FDivergence.ReverseKl, ClosedForms.ReverseKl(pi, r), ClosedForms.ReverseKlGrad(pi, r)),
                                                  (FDivergence.ForwardKl, ClosedForms.ForwardKl(pi, r), ClosedForms.ForwardKlGrad(pi, r)) })
            foreach (var index in new[] { IndexSource.SamplingPolicy, IndexSource.Anchor })
            {
                var e = new DivergenceEstimator
                {
                    Name = $"topk-{f.Name}", Target = f, Index = index, Equation = "eq. 122", Description = "test", Sampled = true,
                    Fn = (x, o) => TopkFDivergence.Compute(f, x.PolicyLogp, x.AnchorLogp, x.PolicyLogpQ!, x.AnchorLogpQ!, x.SampledInQ!,
                        Ratios.ImportanceWeight(x.PolicyLogp, x.SamplingLogp, o), o.LogRatioClamp),
                };
                var got = ExactExpectation.Expect(e, p, k, EstimatorOptions.Default);
                Assert.True(ExactExpectation.RelativeError(got.Value, value) < 1e-9, $"{f.Name} value, q from {index}");
                Assert.True(ExactExpectation.RelativeError(got.Gradient, grad) < 1e-9, $"{f.Name} gradient, q from {index}");
            }
    }
}

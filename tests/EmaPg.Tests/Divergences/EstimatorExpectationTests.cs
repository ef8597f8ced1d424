using EmaPg.Audit;
using EmaPg.Divergences;
using static EmaPg.Tests.Divergences.ClosedForms;

namespace EmaPg.Tests.Divergences;

/// <summary>
/// Exact-expectation tests (float64, whole vocabulary enumerated, each sampled token weighted by its
/// sampling probability): expected value and expected autograd gradient of every estimator against a
/// hand-written closed form. Biased estimators are checked against their exact predicted bias, so every
/// assertion can fail. Tolerance 1e-9 relative, never loosened.
/// </summary>
public class EstimatorExpectationTests
{
    private const double Tol = 1e-9;

    public static IEnumerable<object[]> Problems()
    {
        foreach (var v in new[] { 5, 17, 64 })
            foreach (var off in new[] { false, true })
                foreach (var k in new[] { 0, 1, 3, v / 2, v })
                    yield return [v, off, k];
    }

    private static (double[] P, double[] R, CategoricalProblem Problem) Setup(int v, bool off, int seed = 7)
    {
        var prob = CategoricalProblem.Random(v, off, seed + v * 31 + (off ? 1 : 0));
        return (Softmax(prob.PolicyLogits), Softmax(prob.AnchorLogits), prob);
    }

    private static void Close(double want, double got, string what) =>
        Assert.True(ExactExpectation.RelativeError(got, want) < Tol || Math.Abs(got - want) < 1e-14,
            $"{what}: expected {want:R}, got {got:R} (rel. err {ExactExpectation.RelativeError(got, want):E2})");

    private static void Close(double[] want, double[] got, string what)
    {
        double err = ExactExpectation.RelativeError(got, want);
        double norm = Math.Sqrt(want.Sum(x => x * x));
        Assert.True(err < Tol || (norm < 1e-14 && Math.Sqrt(got.Sum(x => x * x)) < 1e-14), $"{what}: gradient rel. err {err:E2}");
    }

    private static ExactExpectation.Moments E(string name, CategoricalProblem p, int k) =>
        ExactExpectation.Expect(Estimators.Get(name), p, k, EstimatorOptions.Default);

    [Theory]
    [MemberData(nameof(Problems))]
    public void UnbiasedReverseKlEstimators(int v, bool off, int k)
    {
        var (p, r, prob) = Setup(v, off);
        foreach (var name in new[] { "exact-reverse", "k3pp", "k4", "topk-reverse" })
        {
            var m = E(name, prob, k);
            Close(ReverseKl(p, r), m.Value, $"{name} value");
            Close(ReverseKlGrad(p, r), m.Gradient, $"{name} gradient");
        }
    }

    [Theory]
    [MemberData(nameof(Problems))]
    public void UnbiasedForwardKlEstimators(int v, bool off, int k)
    {
        var (p, r, prob) = Setup(v, off);
        foreach (var name in new[] { "exact-forward", "k5", "topk-forward" })
        {
            var m = E(name, prob, k);
            Close(ForwardKl(p, r), m.Value, $"{name} value");
            Close(ForwardKlGrad(p, r), m.Gradient, $"{name} gradient");
        }
    }

    [Theory]
    [InlineData(16, false)]
    [InlineData(16, true)]
    [InlineData(64, true)]
    public void K1K2K3HaveThePredictedBiases(int v, bool off)
    {
        var (p, r, prob) = Setup(v, off);
        var k1 = E("k1", prob, 0);
        Close(ReverseKl(p, r), k1.Value, "k1 value");
        Close(new double[v], k1.Gradient, "k1 gradient is 0 (App. E.2)");
        Assert.True(ExactExpectation.RelativeError(k1.Gradient, ReverseKlGrad(p, r)) > 0.5);

        var k2 = E("k2", prob, 0);
        Close(p.Select((pi, i) => pi * 0.5 * Math.Pow(Math.Log(pi / r[i]), 2)).Sum(), k2.Value, "k2 value is E[ℓ²/2]");
        Close(ReverseKlGrad(p, r), k2.Gradient, "k2 gradient");
        Assert.True(ExactExpectation.RelativeError(k2.Value, ReverseKl(p, r)) > 1e-3);

        var k3 = E("k3", prob, 0);
        Close(ReverseKl(p, r), k3.Value, "k3 value");
        Close(ForwardKlGrad(p, r), k3.Gradient, "k3 gradient is the forward-KL gradient (eq. 81)");
        Assert.True(ExactExpectation.RelativeError(k3.Gradient, ReverseKlGrad(p, r)) > 1e-3);
    }

    [Theory]
    [MemberData(nameof(Problems))]
    public void PaperTopkEstimatorsAreBiasedByExactlyTheGradientOfTheHeadMass(int v, bool off, int k)
    {
        var (p, r, prob) = Setup(v, off);
        var rev = E("topk-reverse-paper", prob, k);
        var qRev = ExactExpectation.IndexSet(Estimators.Get("topk-reverse-paper"), prob, k);
        Close(ReverseKl(p, r), rev.Value, "Alg. 1 value");
        Close(Add(ReverseKlGrad(p, r), MassGrad(p, qRev)), rev.Gradient, "Alg. 1 gradient = ∇KL + ∇M_q");

        var fwd = E("topk-forward-paper", prob, k);
        var qFwd = ExactExpectation.IndexSet(Estimators.Get("topk-forward-paper"), prob, k);
        Close(ForwardKl(p, r), fwd.Value, "Alg. 2 value");
        Close(Add(ForwardKlGrad(p, r), MassGrad(p, qFwd), -1.0), fwd.Gradient, "Alg. 2 gradient = ∇FKL − ∇M_q");

        if (k > 0 && k < v)
        {
            // The bias is real whenever q is a proper, non-empty subset.
            Assert.True(ExactExpectation.RelativeError(rev.Gradient, ReverseKlGrad(p, r)) > 1e-4);
            Assert.True(ExactExpectation.RelativeError(fwd.Gradient, ForwardKlGrad(p, r)) > 1e-4);
        }
    }

    [Theory]
    [MemberData(nameof(Problems))]
    public void TruncatedEstimatorsEqualTheirHeadExactly(int v, bool off, int k)
    {
        var (p, r, prob) = Setup(v, off);
        var qr = ExactExpectation.IndexSet(Estimators.Get("truncated-reverse"), prob, k);
        var tr = E("truncated-reverse", prob, k);
        Close(qr.Sum(j => p[j] * Math.Log(p[j] / r[j])), tr.Value, "truncated reverse value");
        var qf = ExactExpectation.IndexSet(Estimators.Get("truncated-forward"), prob, k);
        var tf = E("truncated-forward", prob, k);
        Close(qf.Sum(j => r[j] * Math.Log(r[j] / p[j])), tf.Value, "truncated forward value");
        // ∂/∂z_i Σ_{j∈q} r_j(log r_j − log p_j) = −Σ_{j∈q} r_j(δ_ij − p_i) = p_i R_q − r_i 1(i∈q).
        var set = qf.ToHashSet();
        double rq = qf.Sum(j => r[j]);
        Close(p.Select((pi, i) => pi * rq - (set.Contains(i) ? r[i] : 0)).ToArray(), tf.Gradient, "truncated forward gradient");
    }
}

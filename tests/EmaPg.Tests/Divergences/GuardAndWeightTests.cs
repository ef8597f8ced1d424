using EmaPg.Audit;
using EmaPg.Common;
using EmaPg.Divergences;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Divergences;

public class GuardAndWeightTests
{
    [Fact]
    public void ClippingTheWeightToOneIgnoresOffPolicyCorrectionExactly()
    {
        // s_min = s_max = 1 is "no off-policy correction" (App. B): the expectation becomes E_{π_s}[K̂].
        var p = CategoricalProblem.Random(16, true, 4);
        var ps = ClosedForms.Softmax(p.SamplingLogits);
        var pi = ClosedForms.Softmax(p.PolicyLogits);
        var r = ClosedForms.Softmax(p.AnchorLogits);
        var m = ExactExpectation.Expect(Estimators.Get("k4"), p, 0, new EstimatorOptions { SMin = 1, SMax = 1 });
        double want = ps.Select((s, i) => s * Math.Log(pi[i] / r[i])).Sum();
        Assert.True(ExactExpectation.RelativeError(m.Value, want) < 1e-12);
        Assert.True(ExactExpectation.RelativeError(m.Value, ClosedForms.ReverseKl(pi, r)) > 1e-3);
    }

    [Fact]
    public void ImportanceWeightIsClippedAndCarriesNoGradient()
    {
        using var scope = NewDisposeScope();
        var lp = tensor(new[] { Math.Log(0.5), Math.Log(0.01), Math.Log(0.3) }, dtype: float64).requires_grad_(true);
        var ls = tensor(new[] { Math.Log(0.05), Math.Log(0.5), Math.Log(0.3) }, dtype: float64);
        var s = Ratios.ImportanceWeight(lp, ls, new EstimatorOptions { SMin = 0.1, SMax = 2.5 });
        Assert.Equal(new[] { 2.5, 0.1, 1.0 }, s.data<double>().ToArray().Select(v => Math.Round(v, 12)));
        Assert.False(s.requires_grad);
    }

    [Fact]
    public void NonFiniteInputsGiveAClearError()
    {
        using var scope = NewDisposeScope();
        var x = new KlInputs
        {
            PolicyLogp = tensor(new[] { -1.0, double.NaN }),
            AnchorLogp = tensor(new[] { -1.0, -2.0 }),
            SamplingLogp = tensor(new[] { -1.0, -2.0 }),
        };
        var e = Assert.Throws<NonFiniteInputError>(() => Estimators.Get("k3").Compute(x));
        Assert.Contains("PolicyLogp", e.Message);
    }

    [Fact]
    public void LogRatiosAreClampedSoExtremeTokensStayFinite()
    {
        using var scope = NewDisposeScope();
        var x = new KlInputs
        {
            PolicyLogp = tensor(new[] { -0.1f, -80f }),
            AnchorLogp = tensor(new[] { -90f, -0.2f }),
            SamplingLogp = tensor(new[] { -0.1f, -80f }),
        };
        foreach (var name in new[] { "k1", "k2", "k3", "k3pp", "k4", "k5", "kf-pearson", "kf-neyman", "kf-js", "kf-alpha" })
        {
            var v = Estimators.Get(name).Compute(x);
            Assert.True(v.isfinite().all().item<bool>(), name);
        }
        // K3 at ℓ = +20 (clamped from 89.9): 20 + e^-20 − 1.
        Assert.Equal(19 + Math.Exp(-20), Estimators.Get("k3").Compute(x)[0].item<float>(), 4);
    }

    [Fact]
    public void MissingInputsAndUnknownNamesAreClearErrors()
    {
        using var scope = NewDisposeScope();
        var x = new KlInputs { PolicyLogp = zeros(2), AnchorLogp = zeros(2), SamplingLogp = zeros(2) };
        Assert.Contains("index set q", Assert.Throws<ArgumentException>(() => Estimators.Get("topk-reverse").Compute(x)).Message);
        Assert.Contains("full-vocabulary logits", Assert.Throws<ArgumentException>(() => Estimators.Get("exact-forward").Compute(x)).Message);
        Assert.Contains("valid:", Assert.Throws<UserError>(() => Estimators.Get("k7")).Message);
        Assert.Throws<UserError>(() => new EstimatorOptions { SMin = 2, SMax = 1 }.Validated());
        Assert.Throws<UserError>(() => new EstimatorOptions { Alpha = 1 }.Validated());
    }
}

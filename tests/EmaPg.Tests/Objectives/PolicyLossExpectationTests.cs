using EmaPg.Audit;
using EmaPg.Objectives;
using static EmaPg.Tests.Divergences.ClosedForms;
using static TorchSharp.torch;

namespace EmaPg.Tests.Objectives;

/// <summary>
/// Exact-expectation tests of the policy losses (float64): every token y of a small vocabulary is one response with
/// advantage A(y), sampled from π_old and weighted by π_old(y). E[loss] and E[∇loss] are compared with a hand-written
/// closed form of −J = −E_{π_θ}[A] + β·D(π_θ, π_ref): ∇_z(−E_π[A]) = −π_i(A_i − E_π[A]), the KL gradients from
/// <see cref="Divergences.ClosedForms"/>. Tolerance 1e-9 relative, clipping off (the clip is biased by design).
/// </summary>
public class PolicyLossExpectationTests
{
    private const double Tol = 1e-9, Beta = 0.7;

    public static IEnumerable<object[]> Problems() =>
        from v in new[] { 5, 17 } from off in new[] { false, true } select new object[] { v, off };

    private static (double[] P, double[] R, double[] A, CategoricalProblem Problem) Setup(int v, bool off)
    {
        var prob = CategoricalProblem.Random(v, off, 11 + v * 13 + (off ? 1 : 0));
        return (Softmax(prob.PolicyLogits), Softmax(prob.AnchorLogits), PolicyLossAudit.Advantages(v, v), prob);
    }

    private static (double Value, double[] Grad) MinusExpectedAdvantage(double[] p, double[] a)
    {
        double ea = p.Select((pi, i) => pi * a[i]).Sum();
        return (-ea, p.Select((pi, i) => -pi * (a[i] - ea)).ToArray());
    }

    private static ExactExpectation.Moments E(string loss, CategoricalProblem p, double[] a, PolicyLossOptions? o = null) =>
        PolicyLossAudit.Expect(PolicyLosses.Get(loss), p, a, o ?? PolicyLossOptions.Unclipped with { Beta = Beta });

    private static void Close(double want, double got, string what) =>
        Assert.True(ExactExpectation.RelativeError(got, want) < Tol, $"{what}: expected {want:R}, got {got:R}");

    private static void Close(double[] want, double[] got, string what) =>
        Assert.True(ExactExpectation.RelativeError(got, want) < Tol, $"{what}: gradient rel. err {ExactExpectation.RelativeError(got, want):E2}");

    [Theory]
    [MemberData(nameof(Problems))]
    public void UnregularisedSurrogatesAreUnbiasedPolicyGradientsWhenNothingIsClipped(int v, bool off)
    {
        var (p, _, a, prob) = Setup(v, off);
        var (value, grad) = MinusExpectedAdvantage(p, a);
        foreach (var name in new[] { "clip-higher", "gspo", "cispo" })
        {
            var m = E(name, prob, a);
            Close(value, m.Value, $"{name} value");
            Close(grad, m.Gradient, $"{name} gradient");
        }
    }

    [Theory]
    [MemberData(nameof(Problems))]
    public void RpgReverseKlLossesHaveTheGradientOfTheReverseKlRegularisedObjective(int v, bool off)
    {
        var (p, r, a, prob) = Setup(v, off);
        var (value, grad) = MinusExpectedAdvantage(p, a);
        // On a normalised policy UKL(π‖ρ) = KL(π‖ρ) + Σ(ρ − π) = KL(π‖ρ), in value and gradient.
        foreach (var name in new[] { "rpg-rkl", "rpg-rkl-reinforce", "rpg-urkl", "rpg-urkl-reinforce", "grpo-k3-corrected" })
        {
            var m = E(name, prob, a);
            Close(value + Beta * ReverseKl(p, r), m.Value, $"{name} value");
            Close(Add(grad, ReverseKlGrad(p, r), Beta), m.Gradient, $"{name} gradient");
        }
    }

    [Theory]
    [MemberData(nameof(Problems))]
    public void RpgForwardKlLossesHaveTheGradientOfTheForwardKlRegularisedObjective(int v, bool off)
    {
        var (p, r, a, prob) = Setup(v, off);
        var (value, grad) = MinusExpectedAdvantage(p, a);
        foreach (var name in new[] { "rpg-fkl", "rpg-fkl-reinforce", "rpg-ufkl", "rpg-ufkl-reinforce" })
        {
            var m = E(name, prob, a);
            Close(value + Beta * ForwardKl(p, r), m.Value, $"{name} value");
            Close(Add(grad, ForwardKlGrad(p, r), Beta), m.Gradient, $"{name} gradient");
        }
    }

    [Theory]
    [MemberData(nameof(Problems))]
    public void GrposUnweightedK3TermHasTheForwardKlGradientOnPolicyAndNoKlsOffPolicy(int v, bool off)
    {
        var (p, r, a, prob) = Setup(v, off);
        var (value, grad) = MinusExpectedAdvantage(p, a);
        var m = E("grpo-k3", prob, a);
        var forward = Add(grad, ForwardKlGrad(p, r), Beta);
        var reverse = Add(grad, ReverseKlGrad(p, r), Beta);
        if (!off)
        {
            Close(value + Beta * ReverseKl(p, r), m.Value, "k3 value on-policy (E_π[k3] = UKL(π‖ρ))");
            Close(forward, m.Gradient, "k3 gradient on-policy");
        }
        else
        {
            // Off-policy the expected gradient is Σ_y π_old(y)(1 − ρ/π)∇log π(y): exactly that, and far from both KLs'.
            var ps = Softmax(prob.SamplingLogits);
            var regulariser = new double[v];
            for (int y = 0; y < v; y++)
                for (int i = 0; i < v; i++) regulariser[i] += ps[y] * (1 - r[y] / p[y]) * ((i == y ? 1 : 0) - p[i]);
            Close(Add(grad, regulariser, Beta), m.Gradient, "k3 gradient off-policy");
            Assert.True(ExactExpectation.RelativeError(m.Gradient, forward) > 1e-3);
            Assert.True(ExactExpectation.RelativeError(m.Gradient, reverse) > 1e-3);
        }
    }

    /// <summary>RPG's point (ii): each REINFORCE-style loss has the importance-weighted loss's gradient sample by sample, not only in expectation.</summary>
    [Theory]
    [InlineData("rkl")]
    [InlineData("urkl")]
    [InlineData("fkl")]
    [InlineData("ufkl")]
    public void ReinforceFormsHaveTheSamePerSampleGradientAsTheImportanceWeightedForms(string kind)
    {
        var (_, _, a, prob) = Setup(9, true);
        var weights = Enumerable.Range(0, 9).Select(i => Math.Sin(3.0 * i + 1)).ToArray();   // arbitrary, signed: equal weighted sums for every weighting ⇔ equal per-sample gradients
        double[] Grad(string loss)
        {
            using var scope = NewDisposeScope();
            var z = tensor(prob.PolicyLogits, dtype: float64).requires_grad_(true);
            var x = new PolicyLossInputs
            {
                Logp = z.log_softmax(0).unsqueeze(1), OldLogp = tensor(prob.SamplingLogits, dtype: float64).log_softmax(0).unsqueeze(1),
                Advantages = tensor(a, dtype: float64), Mask = ones(9, 1, dtype: float64),
                AnchorLogp = tensor(prob.AnchorLogits, dtype: float64).log_softmax(0).unsqueeze(1),
            };
            var (j, _) = PolicyLosses.Get(loss).Compute(x, PolicyLossOptions.Unclipped with { Beta = Beta });
            (tensor(weights, dtype: float64) * j.squeeze(1)).sum().backward();
            return z.grad!.data<double>().ToArray();
        }
        Close(Grad($"rpg-{kind}"), Grad($"rpg-{kind}-reinforce"), kind);
        // …while the unnormalised forms differ per sample from the normalised ones by the zero-mean baseline β·sg(w)·∇log π.
        if (kind is "rkl" or "fkl")
            Assert.True(ExactExpectation.RelativeError(Grad($"rpg-u{kind}"), Grad($"rpg-{kind}")) > 1e-3);
    }
}

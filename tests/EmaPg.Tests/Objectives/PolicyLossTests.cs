using EmaPg.Objectives;
using static TorchSharp.torch;

namespace EmaPg.Tests.Objectives;

/// <summary>Hand-computed checks of GSPO, CISPO, RPG's dual clip and how the loss treats a policy loss that carries its own KL.</summary>
public class PolicyLossTests
{
    private static double[] D(Tensor t) => t.to_type(ScalarType.Float64).data<double>().ToArray();

    private static PolicyLossInputs Inputs(Tensor logp, Tensor old, Tensor adv, Tensor mask, Tensor? anchor = null) =>
        new() { Logp = logp, OldLogp = old, Advantages = adv, Mask = mask, AnchorLogp = anchor };

    [Fact]
    public void GspoUsesTheLengthNormalisedSequenceRatioOverTheMaskedTokensAndClipsWholeSequences()
    {
        using var scope = NewDisposeScope();
        // Log-ratios: sequence 0 [.1, −.2, .4] → mean .1; sequence 1 [.3, .1, (masked) 5] → mean .2. A = [+1, −1].
        var old = tensor(new double[,] { { -1, -2, -0.5 }, { -1.5, -0.7, -3 } });
        var delta = tensor(new double[,] { { 0.1, -0.2, 0.4 }, { 0.3, 0.1, 5.0 } });
        var mask = tensor(new double[,] { { 1, 1, 1 }, { 1, 1, 0 } });
        var adv = tensor(new[] { 1.0, -1.0 });
        var logp = (old + delta).detach().requires_grad_(true);
        double s0 = Math.Exp(0.1), s1 = Math.Exp(0.2);
        var (j, m) = Gspo.Compute(Inputs(logp, old, adv, mask), new PolicyLossOptions(0.15, 0.15));
        Assert.Equal(new double[] { 1, 1, 1, 1, 1, 1 }, D(m));
        var want = new[] { s0, s0, s0, -s1, -s1, -s1 };
        for (int i = 0; i < 6; i++) Assert.Equal(want[i], D(j)[i], 12);
        // seq-mean-token-mean gives the sequence objective's gradient A_i·∂s_i/∂log π_t = A_i·s_i/|y_i| on unmasked tokens.
        LossAggregation.Aggregate(j, mask, LossAggregationMode.SeqMeanTokenMean).backward();
        var g = D(logp.grad!);
        var wantGrad = new[] { s0 / 3 / 2, s0 / 3 / 2, s0 / 3 / 2, -s1 / 2 / 2, -s1 / 2 / 2, 0 };
        for (int i = 0; i < 6; i++) Assert.Equal(wantGrad[i], g[i], 12);
        // ε_high = .05 < s0 − 1 clips all of sequence 0 (A > 0); ε_low only clips A < 0 below 1 − ε_low, and s1 > 1.
        var (_, m2) = Gspo.Compute(Inputs(logp, old, adv, mask), new PolicyLossOptions(0.15, 0.05));
        Assert.Equal(new double[] { 0, 0, 0, 1, 1, 1 }, D(m2));
    }

    [Fact]
    public void CispoKeepsEveryTokenAndClipsOnlyTheStopGradientWeight()
    {
        using var scope = NewDisposeScope();
        var old = tensor(new double[,] { { -1, -2, -0.5 } });
        var logp = (old + tensor(new[] { Math.Log(1.5), Math.Log(0.5), Math.Log(1.1) }).reshape(1, 3)).detach().requires_grad_(true);
        var (j, m) = Cispo.Compute(Inputs(logp, old, tensor(new[] { 2.0 }), ones(1, 3, dtype: float64)), new PolicyLossOptions(0.2, 0.28));
        // ŵ = clip(w, .8, 1.28) = [1.28, .8, 1.1]; value and gradient ŵ·A (PPO's clip would zero token 0's gradient).
        var want = new[] { 2.56, 1.6, 2.2 };
        for (int i = 0; i < 3; i++) Assert.Equal(want[i], D(j)[i], 12);
        Assert.Equal(new double[] { 0, 0, 1 }, D(m));
        j.sum().backward();
        for (int i = 0; i < 3; i++) Assert.Equal(want[i], D(logp.grad!)[i], 12);
    }

    [Fact]
    public void DualClipDropsTokensOutsideTheTrustRegionInTheAdvantagesDirectionAndNegativeOnesAboveC()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new[] { 1.0, -1, -1, -1, 1, 1 });
        var w = tensor(new[] { 1.3, 0.7, 1.5, 12, 0.5, 12 });
        Assert.Equal(new double[] { 0, 0, 1, 0, 1, 0 }, D(DualClip.Keep(a, w, new PolicyLossOptions(0.2, 0.28, 10))));
        Assert.Equal(new double[] { 0, 0, 1, 1, 1, 0 }, D(DualClip.Keep(a, w, new PolicyLossOptions(0.2, 0.28, double.PositiveInfinity))));
    }

    [Fact]
    public void RpgLossOfAClippedTokenHasNoGradientAndAKeptTokensIsSgWTimesG()
    {
        using var scope = NewDisposeScope();
        // Token 0: A = +1, w = 1.5 > 1.28 → clipped. Token 1: A = −1, w = .9 kept; ℓ = log π − log π_ref = .3.
        var old = tensor(new double[,] { { -1, -2 } });
        var logp = (old + tensor(new[] { Math.Log(1.5), Math.Log(0.9) }).reshape(1, 2)).detach().requires_grad_(true);
        var anchor = logp.detach() - 0.3;
        var o = new PolicyLossOptions(0.2, 0.28, 10, Beta: 0.5);
        foreach (var name in new[] { "rpg-rkl", "rpg-rkl-reinforce" })
        {
            logp.grad?.zero_();
            var (j, m) = PolicyLosses.Get(name).Compute(Inputs(logp, old, tensor(new[] { 1.0, -1.0 }).reshape(1, 2), ones(1, 2, dtype: float64), anchor), o);
            Assert.Equal(new double[] { 0, 1 }, D(m));
            j.sum().backward();
            // objective = −loss; ∂loss/∂log π = w·g, g = −A + β(ℓ + 1) = 1 + .5·1.3.
            Assert.Equal(0.0, D(logp.grad!)[0], 12);
            Assert.Equal(-0.9 * (1 + 0.5 * 1.3), D(logp.grad!)[1], 12);
            Assert.Equal(-(0.9 + 0.5 * 0.9 * 0.3), D(j)[1], 12);   // −(−wA + β·wℓ)
        }
        Assert.Contains("AnchorLogp", Assert.Throws<ArgumentException>(() =>
            PolicyLosses.Get("rpg-fkl").Compute(Inputs(logp, old, tensor(new[] { 1.0 }), ones(1, 2, dtype: float64)), o)).Message);
    }

    [Fact]
    public void ARegularisedPolicyLossIsNotGivenTheEstimatorsKlOnTop()
    {
        using var scope = NewDisposeScope();
        var logp = tensor(new double[,] { { -1, -2 } }).requires_grad_(true);
        var anchor = tensor(new double[,] { { -1.5, -1.0 } });
        var mask = ones(1, 2, dtype: float64);
        var kl = logp * 3.0;   // an estimator's output; must only be reported
        var t = KlRegularizedLoss.Compute(logp, logp.detach(), tensor(new[] { 2.0 }), mask, kl, 0.1, LossAggregationMode.TokenMean,
            policyLoss: PolicyLosses.Get("rpg-rkl"), anchorLogp: anchor);
        // On-policy w = 1: loss per token −A + β·ℓ = −2 + .1·[.5, −1]; token mean −2 − .025.
        Assert.Equal(-2 - 0.025, t.Loss.item<double>(), 12);
        Assert.Equal(-4.5, t.Kl.item<double>(), 12);
        Assert.Equal(2 + 0.025, t.PolicyObjective.item<double>(), 12);
    }
}

using EmaPg.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Objectives;

/// <summary>Hand-computed checks of the GRPO objective of App. A and App. B.</summary>
public class ObjectiveTests
{
    private static double[] D(Tensor t) => t.to_type(ScalarType.Float64).data<double>().ToArray();

    [Fact]
    public void GroupAdvantagesUseTheGroupMeanAndTheNMinusOneStd()
    {
        using var scope = NewDisposeScope();
        // Group 1: mean .75, Σ(R−V)² = 3·.0625 + .5625 = .75, std = √(.75/3) = .5. Group 2: no signal.
        var a = GroupAdvantage.Compute(tensor(new[] { 1.0, 0, 1, 1, 0, 0, 0, 0 }), 4, eps: 0);
        var want = new[] { 0.5, -1.5, 0.5, 0.5 };
        for (int i = 0; i < 4; i++) Assert.Equal(want[i], D(a)[i], 12);
        Assert.All(D(a).Skip(4), v => Assert.True(double.IsNaN(v) || v == 0));   // 0/0 without ε
        var withEps = GroupAdvantage.Compute(tensor(new[] { 1.0, 0, 1, 1, 0, 0, 0, 0 }), 4);
        Assert.All(D(withEps).Skip(4), v => Assert.Equal(0.0, v));
        var noStd = GroupAdvantage.Compute(tensor(new[] { 3.0, 1.0 }), 2, divideByStd: false);
        Assert.Equal(new[] { 1.0, -1.0 }, D(noStd));
        Assert.Throws<ArgumentException>(() => GroupAdvantage.Compute(tensor(new[] { 1.0, 2.0, 3.0 }), 2));
    }

    [Fact]
    public void GlobalNormalisationZScoresTheFlattenedGroupCentredRewards()
    {
        using var scope = NewDisposeScope();
        // Centred: [.5, −.5, 1, −1]; mean 0; std (N−1) = √(2.5/3).
        var a = GlobalAdvantageNormalization.Compute(tensor(new[] { 1.0, 0.0, 3.0, 1.0 }), 2, eps: 0);
        double sd = Math.Sqrt(2.5 / 3);
        var want = new[] { 0.5 / sd, -0.5 / sd, 1 / sd, -1 / sd };
        for (int i = 0; i < 4; i++) Assert.Equal(want[i], D(a)[i], 12);
    }

    [Fact]
    public void ClipHigherMaskDropsOnlyTheTokensThatLeftTheTrustRegionInTheAdvantagesDirection()
    {
        using var scope = NewDisposeScope();
        // ratios: 1.3 (> 1.28), 1.2, 0.75 (< 0.8), 0.85; sequence 0 has A = +1, sequence 1 has A = −1.
        var ratios = new[] { 1.3, 1.2, 0.75, 0.85 };
        var old = tensor(new[] { -1.0, -2.0, -1.5, -0.5 }, dtype: float64);
        var logp = (old + tensor(ratios.Select(x => Math.Log(x)).ToArray(), dtype: float64)).reshape(2, 2).detach().requires_grad_(true);
        var oldLogp = old.reshape(2, 2);
        var adv = tensor(new[] { 1.0, -1.0 }, dtype: float64);
        var (j, m) = GrpoClipHigher.Compute(logp, oldLogp, adv);
        Assert.Equal(new[] { 0.0, 1.0, 0.0, 1.0 }, D(m));
        // A>0 with ratio 0.75 or A<0 with ratio 1.3 would not be clipped:
        var (_, m2) = GrpoClipHigher.Compute(logp, oldLogp, tensor(new[] { -1.0, 1.0 }, dtype: float64));
        Assert.Equal(new[] { 1.0, 1.0, 1.0, 1.0 }, D(m2));
        // Value M·A·ratio and gradient M·A·ratio (d ratio / d logp = ratio).
        Assert.Equal(new[] { 0.0, 1.2, 0.0, -0.85 }, D(j).Select(v => Math.Round(v, 12)));
        j.sum().backward();
        Assert.Equal(new[] { 0.0, 1.2, 0.0, -0.85 }, D(logp.grad!).Select(v => Math.Round(v, 12)));
    }

    [Fact]
    public void AggregationModesMatchHandComputedValues()
    {
        using var scope = NewDisposeScope();
        var loss = tensor(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } });
        var mask = tensor(new double[,] { { 1, 1, 0 }, { 1, 0, 0 } });
        Assert.Equal(7.0 / 3, LossAggregation.Aggregate(loss, mask, LossAggregationMode.TokenMean).item<double>(), 12);
        Assert.Equal((1.5 + 4) / 2, LossAggregation.Aggregate(loss, mask, LossAggregationMode.SeqMeanTokenMean).item<double>(), 12);
        Assert.Equal((3.0 + 4) / 2, LossAggregation.Aggregate(loss, mask, LossAggregationMode.SeqMeanTokenSum).item<double>(), 12);
        Assert.Equal(LossAggregationMode.SeqMeanTokenSum, LossAggregation.Parse("seq-mean-token-sum"));
        Assert.Contains("token-mean", Assert.Throws<EmaPg.Common.UserError>(() => LossAggregation.Parse("sum")).Message);
    }

    [Fact]
    public void LossIsMinusJPlusBetaKlAndMaskedTokensGetNoGradient()
    {
        using var scope = NewDisposeScope();
        var logp = tensor(new double[,] { { -1, -2 }, { -0.5, -3 } }).requires_grad_(true);
        var old = logp.detach().clone();
        var adv = tensor(new[] { 2.0, -1.0 });
        var mask = tensor(new double[,] { { 1, 1 }, { 1, 0 } });
        var kl = logp * 0.5 + 3.0;   // any differentiable per-token term
        var t = KlRegularizedLoss.Compute(logp, old, adv, mask, kl, beta: 0.1, LossAggregationMode.TokenMean);
        // J = (2 + 2 − 1)/3 = 1; KL = mean(2.5, 2, 2.75) = 7.25/3; loss = −1 + 0.1·7.25/3.
        Assert.Equal(1.0, t.PolicyObjective.item<double>(), 12);
        Assert.Equal(7.25 / 3, t.Kl.item<double>(), 12);
        Assert.Equal(-1 + 0.1 * 7.25 / 3, t.Loss.item<double>(), 12);
        Assert.Equal(0.0, t.ClipFraction.item<double>(), 12);
        t.Loss.backward();
        // ∂/∂logp_n = (−A_n + 0.1·0.5)/3 on unmasked tokens, 0 on the masked one.
        var want = new[] { (-2 + 0.05) / 3, (-2 + 0.05) / 3, (1 + 0.05) / 3, 0 };
        var got = D(logp.grad!);
        for (int i = 0; i < 4; i++) Assert.Equal(want[i], got[i], 12);
    }

    [Fact]
    public void SequenceKlInTheRewardIsSubtractedPerResponseOverItsMaskedTokensBeforeAdvantages()
    {
        using var scope = NewDisposeScope();
        var old = tensor(new double[,] { { -1, -2, -9 }, { -0.5, -1, -1 } });
        var anchor = tensor(new double[,] { { -1.5, -1, 0 }, { -1, -1, -3 } });
        var mask = tensor(new double[,] { { 1, 1, 0 }, { 1, 1, 1 } });
        // KL_seq = [(.5 − 1), (.5 + 0 + 2)] = [−.5, 2.5]; R − .2·KL = [1.1, −.5]; group of 2, no std: ±.8.
        var a = Advantages.WithSequenceKl(Advantages.Get("none"), tensor(new[] { 1.0, 0.0 }), old, anchor, mask, 0.2, 2);
        Assert.Equal(0.8, D(a)[0], 12);
        Assert.Equal(-0.8, D(a)[1], 12);
    }

    [Fact]
    public void KlCanBeAggregatedPerSequenceSumWhileJStaysATokenMean()
    {
        using var scope = NewDisposeScope();
        var logp = tensor(new double[,] { { -1, -2 }, { -0.5, -3 } }).requires_grad_(true);
        var mask = tensor(new double[,] { { 1, 1 }, { 1, 0 } });
        var kl = tensor(new double[,] { { 1, 2 }, { 4, 8 } });
        var t = KlRegularizedLoss.Compute(logp, logp.detach(), tensor(new[] { 2.0, -1.0 }), mask, kl, 0.1, LossAggregationMode.TokenMean,
            klMode: LossAggregationMode.SeqMeanTokenSum);
        Assert.Equal((3.0 + 4) / 2, t.Kl.item<double>(), 12);       // App. A: Σ_t per response, mean over responses
        Assert.Equal(1.0, t.PolicyObjective.item<double>(), 12);     // (2 + 2 − 1)/3, still a token mean
        Assert.Equal(-1 + 0.1 * 3.5, t.Loss.item<double>(), 12);
    }
}

using EmaPg.Divergences;
using EmaPg.Heads;
using EmaPg.Objectives;
using EmaPg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Heads;

/// <summary>
/// <see cref="TokenHead.FusedLoss"/> (gradients formed in the forward pass, row chunk by row chunk, three GEMMs) against
/// autograd through full logits (<see cref="TokenHead.Unfused"/>), float64 at 1e-9 relative: the loss value and ∂h, ∂W for
/// every estimator that does not need full logits and for the trainer's whole mini-batch loss (<see cref="RowChunkedLoss"/>)
/// with every token-local policy loss and aggregation mode, across row chunks that do and do not divide N.
/// </summary>
public class FusedLossTests
{
    private const double Tol = 1e-9;
    private const int B = 3, L = 4, N = B * L, H = 5, V = 23;

    private static void Close(Tensor want, Tensor got, string what) => HeadRollout.Close(want, got, what, Tol);

    /// <summary>A rollout of B sequences × L tokens with one advantage per sequence and a mask with holes.</summary>
    private sealed record Rollout(Tensor Hidden, Tensor Weight, Tensor Sampled, Tensor SamplingLogp, Tensor AnchorLogp, Tensor? Q, Tensor? AnchorLogpQ,
        Tensor Advantages, Tensor OldLogp, Tensor Mask);

    private static Rollout MakeRollout(IndexSource src, int k, double temp, int seed)
    {
        var r = HeadRollout.Make(N, H, V, src, k, temp, seed, advantages: B);
        // Sequences of different lengths, so that the three aggregation modes weigh tokens differently.
        var mask = tensor(new long[] { 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0 }).reshape(B, L).to_type(ScalarType.Bool);
        return new Rollout(r.Hidden, r.Weight, r.Sampled, r.SamplingLogp, r.AnchorLogp, r.Q, r.AnchorLogpQ, r.Advantages, r.OldLogp, mask);
    }

    public static IEnumerable<object[]> EstimatorCases()
    {
        foreach (var e in Estimators.All().Where(e => !e.NeedsFullLogits))
            foreach (var (rows, temp) in new[] { (1, 1.0), (5, 0.8), (N, 1.0) })
                yield return [e.Name, rows, temp];
    }

    [Theory]
    [MemberData(nameof(EstimatorCases))]
    public void EveryEstimatorWithoutFullLogitsGivesTheUnfusedLossAndGradients(string name, int rows, double temp)
    {
        using var scope = NewDisposeScope();
        var est = Estimators.Get(name);
        var r = MakeRollout(est.Index, 6, temp, 41 + rows);
        var weights = randn(N, dtype: float64, generator: new Generator(9));
        // Σ_n c_n·KL̂_n − 0.03·Σ_n H_n: per-token weights make every row's share distinct.
        Tensor Loss(TokenHeadOutputs o, long start, long count)
        {
            Tensor R(Tensor t) => t.narrow(0, start, count);
            var x = KlInputs.FromHead(o, R(r.Sampled), R(r.SamplingLogp), R(r.AnchorLogp), r.Q is null ? null : R(r.Q), r.AnchorLogpQ is null ? null : R(r.AnchorLogpQ));
            return (est.Compute(x, EstimatorOptions.Default) * R(weights)).sum() - 0.03 * o.Entropy.sum();
        }
        var (hf, wf) = Leaves(r);
        var (fused, outs) = TokenHead.FusedLoss(hf, wf, r.Sampled, Loss, r.Q, temp, rows);
        var (hu, wu) = Leaves(r);
        var unfusedOut = TokenHead.Unfused(hu, wu, r.Sampled, r.Q, temp);
        var unfused = Loss(unfusedOut, 0, N);
        Close(unfused, fused, $"{name}: loss");
        Close(unfusedOut.LogpTarget, outs.LogpTarget, $"{name}: log π(target)");
        Close(unfusedOut.Entropy, outs.Entropy, $"{name}: entropy");
        Close(unfusedOut.LogZ, outs.LogZ, $"{name}: log Z");
        fused.backward();
        unfused.backward();
        Close(hu.grad!, hf.grad!, $"{name}: ∂/∂h");
        Close(wu.grad!, wf.grad!, $"{name}: ∂/∂W");
    }

    public static IEnumerable<object[]> TrainerCases()
    {
        foreach (var loss in PolicyLosses.Registered.Where(l => l.TokenLocal))
            foreach (var (agg, klAgg, rows) in new[] { ("token-mean", "token-mean", 5), ("seq-mean-token-mean", "seq-mean-token-sum", 1), ("seq-mean-token-sum", "token-mean", N) })
                yield return [loss.Name, agg, klAgg, rows];
    }

    /// <summary>
    /// The trainer's mini-batch loss computed in row chunks (<see cref="RowChunkedLoss"/>, as PolicyUpdater runs it) against
    /// <see cref="KlRegularizedLoss.Compute"/> over the whole [B, L] batch from full logits (the unfused trainer path):
    /// the loss, its gradients, and the reported objective, KL and clip fraction.
    /// </summary>
    [Theory]
    [MemberData(nameof(TrainerCases))]
    public void TheTrainersLossInRowChunksEqualsTheWholeBatchLoss(string policyLossName, string agg, string klAgg, int rows)
    {
        using var scope = NewDisposeScope();
        var kl = Estimators.Get("topk-reverse");
        var policyLoss = PolicyLosses.Get(policyLossName);
        var r = MakeRollout(kl.Index, 4, 1.0, 53 + rows);
        var mode = LossAggregation.Parse(agg);
        var klMode = LossAggregation.Parse(klAgg);
        // A clip range that masks some tokens and RPG's dual clip, so the clipped branches count.
        var options = new PolicyLossOptions(0.1, 0.15, 3.0);
        const double beta = 0.2;

        var (hf, wf) = Leaves(r);
        var chunked = new RowChunkedLoss(beta, options, kl, EstimatorOptions.Default, policyLoss, mode, klMode, r.Mask, r.OldLogp.reshape(B, L), r.Advantages,
            r.Sampled, r.SamplingLogp, r.AnchorLogp, r.Q, r.AnchorLogpQ);
        var (loss, _) = TokenHead.FusedLoss(hf, wf, r.Sampled, chunked.Compute, r.Q, rowChunk: rows);
        var got = chunked.Terms(loss);

        var (hu, wu) = Leaves(r);
        var o = TokenHead.Unfused(hu, wu, r.Sampled, r.Q);
        var klTok = kl.Compute(KlInputs.FromHead(o, r.Sampled, r.SamplingLogp, r.AnchorLogp, r.Q, r.AnchorLogpQ), EstimatorOptions.Default).reshape(B, L);
        var want = KlRegularizedLoss.Compute(o.LogpTarget.reshape(B, L), r.OldLogp.reshape(B, L), r.Advantages, r.Mask, klTok, beta, mode,
            options.EpsLow, options.EpsHigh, policyLoss, r.AnchorLogp.reshape(B, L), options.DualClipC, klMode);

        Close(want.Loss, got.Loss, $"{policyLossName}: loss");
        Close(want.PolicyObjective, got.PolicyObjective, $"{policyLossName}: objective");
        Close(want.Kl, got.Kl, $"{policyLossName}: KL");
        Close(want.ClipFraction, got.ClipFraction, $"{policyLossName}: clip fraction");
        got.Loss.backward();
        want.Loss.backward();
        Close(hu.grad!, hf.grad!, $"{policyLossName}: ∂/∂h");
        Close(wu.grad!, wf.grad!, $"{policyLossName}: ∂/∂W");
    }

    [Fact]
    public void SomeTokensAreClippedInTheTrainerCases()
    {
        // Guards the test above against a setting in which the clip never acts (both branches must be exercised).
        using var scope = NewDisposeScope();
        var r = MakeRollout(IndexSource.SamplingPolicy, 4, 1.0, 53 + 5);
        var o = TokenHead.Unfused(r.Hidden, r.Weight, r.Sampled, r.Q);
        var (_, m) = GrpoClipHigher.Compute(o.LogpTarget.reshape(B, L), r.OldLogp.reshape(B, L), r.Advantages, 0.1, 0.15);
        Assert.InRange(m.sum().item<double>(), 1, N - 1);
    }

    [Theory]
    [InlineData("token-mean")]
    [InlineData("seq-mean-token-mean")]
    [InlineData("seq-mean-token-sum")]
    public void AggregationWeightsReproduceTheAggregate(string mode)
    {
        using var scope = NewDisposeScope();
        var m = LossAggregation.Parse(mode);
        var x = randn(B, L, dtype: float64, generator: new Generator(3));
        var mask = MakeRollout(IndexSource.None, 0, 1.0, 1).Mask;
        Close(LossAggregation.Aggregate(x, mask, m), (x * LossAggregation.Weights(mask, m, ScalarType.Float64)).sum(), mode);
    }

    /// <summary>A loss marked token-local gives the same per-token objective whether it sees the whole batch or one row at a time; GSPO does not.</summary>
    [Fact]
    public void TheTokenLocalFlagIsTrueExactlyForLossesWhoseTokensDoNotInteract()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(17);
        var logp = (randn(B, L, dtype: float64, generator: g) * 0.3 - 2).requires_grad_(true);
        var old = logp.detach() + randn(B, L, dtype: float64, generator: g) * 0.2;
        var anchor = logp.detach() + randn(B, L, dtype: float64, generator: g) * 0.3;
        var adv = randn(B, dtype: float64, generator: g);
        var mask = ones(B, L, dtype: ScalarType.Bool);
        var options = new PolicyLossOptions(0.1, 0.15, 3.0, 0.2);
        foreach (var loss in PolicyLosses.Registered)
        {
            var whole = loss.Compute(new PolicyLossInputs { Logp = logp, OldLogp = old, Advantages = adv, Mask = mask, AnchorLogp = anchor }, options).Objective;
            var rowByRow = cat(Enumerable.Range(0, N).Select(i =>
            {
                int b = i / L, t = i % L;
                Tensor At(Tensor x) => x[b, t].reshape(1, 1);
                return loss.Compute(new PolicyLossInputs { Logp = At(logp), OldLogp = At(old), Advantages = adv[b].reshape(1), Mask = At(mask), AnchorLogp = At(anchor) }, options)
                    .Objective.reshape(1);
            }).ToList(), 0).reshape(B, L);
            bool same = (whole - rowByRow).abs().max().item<double>() < 1e-12;
            Assert.True(same == loss.TokenLocal, $"{loss.Name}: TokenLocal = {loss.TokenLocal}, but row by row the objective is {(same ? "the same" : "different")}");
        }
    }

    [Fact]
    public void TheGradientsScaleWithTheIncomingGradientAndOnlyInputsThatNeedOneGetIt()
    {
        using var scope = NewDisposeScope();
        var r = MakeRollout(IndexSource.None, 0, 1.0, 5);
        Tensor Loss(TokenHeadOutputs o, long start, long count) => o.LogpTarget.sum();
        var (h1, w1) = Leaves(r);
        TokenHead.FusedLoss(h1, w1, r.Sampled, Loss, rowChunk: 4).Loss.backward();
        var (h2, w2) = Leaves(r);
        (TokenHead.FusedLoss(h2, w2, r.Sampled, Loss, rowChunk: 4).Loss * 2.5).backward();
        Close(h1.grad! * 2.5, h2.grad!, "∂/∂h × 2.5");
        Close(w1.grad! * 2.5, w2.grad!, "∂/∂W × 2.5");

        var h3 = r.Hidden.detach().clone();
        var w3 = r.Weight.detach().clone().requires_grad_(true);
        TokenHead.FusedLoss(h3, w3, r.Sampled, Loss, rowChunk: 5).Loss.backward();
        Assert.Null(h3.grad);
        Close(w1.grad!, w3.grad!, "∂/∂W without ∂/∂h");
    }

    [Fact]
    public void BadArgumentsAreRejectedNamingThem()
    {
        using var scope = NewDisposeScope();
        var r = MakeRollout(IndexSource.None, 0, 1.0, 5);
        var (h, w) = Leaves(r);
        var e = Assert.Throws<ArgumentException>(() => TokenHead.FusedLoss(h, w, r.Sampled, (o, _, _) => o.LogpTarget.sum(), rowChunk: 0));
        Assert.Contains("rowChunk", e.Message);
        e = Assert.Throws<ArgumentException>(() => TokenHead.FusedLoss(h, w, r.Sampled, (o, _, _) => o.LogpTarget));
        Assert.Contains("scalar", e.Message);
        e = Assert.Throws<ArgumentException>(() => KlRegularizedLoss.ComputeRows(r.OldLogp, r.OldLogp, r.OldLogp, ones(N), null, 0.1,
            (ones(N), ones(N), ones(N)), PolicyLosses.Get("gspo")));
        Assert.Contains("gspo", e.Message);
    }

    private static (Tensor H, Tensor W) Leaves(Rollout r) => (r.Hidden.detach().clone().requires_grad_(true), r.Weight.detach().clone().requires_grad_(true));
}

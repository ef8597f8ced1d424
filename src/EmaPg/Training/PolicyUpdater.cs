using System.Diagnostics;
using EmaPg.Common;
using EmaPg.Divergences;
using EmaPg.Heads;
using EmaPg.Model;
using EmaPg.Objectives;
using EmaPg.Optim;
using EmaPg.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Training;

/// <summary>What one policy update did: means over applied steps, counts, and whether it stopped on non-finite parameters.</summary>
public sealed record UpdateStats(double Kl, double PolicyObjective, double ClipFraction, double GradNorm, double EntropySum, double IsWeightMean,
    double IsWeightMax, int Applied, long Skipped, long TrainTokens, double Seconds, bool LeftNonFiniteParameters);

/// <summary>
/// The policy update, Alg. 3 lines 13–24: Λ passes over the experience in shuffled mini-batches; per mini-batch the loss
/// −J + β·KL̂ (a policy loss from <see cref="PolicyLosses"/>, an estimator from <see cref="Estimators"/>) over the loss mask,
/// and one guarded AdamW step. With <paramref name="checkFinite"/> it stops at the first step that leaves a parameter
/// non-finite, so that the trainer can roll the update back.
/// </summary>
internal sealed class PolicyUpdater(TrainConfig config, CausalLM policy, AdamW optimizer, DivergenceEstimator? kl, EstimatorOptions klOptions,
    LossAggregationMode aggregation, PolicyLoss policyLoss, bool checkFinite, bool fused)
{
    public UpdateStats Update(Experience x, int t)
    {
        var sw = Stopwatch.StartNew();
        var gen = x.Generation;
        long lp = x.PromptLength, L = x.ResponseLength, n = x.Sequences.shape[0];
        var shuffle = new Random(SeedMix.MixInt(config.Seed, t, 3));
        // kl_in_reward_coef > 0: the sequence-level KL of θ_old against the anchor is taken off the reward before advantages
        // (the experience's own advantages are of the raw reward).
        var advantages = config.KlInRewardCoef > 0
            ? Objectives.Advantages.WithSequenceKl(Objectives.Advantages.Get(config.AdvantageNorm), tensor(x.Rewards, dtype: x.OldLogp.dtype, device: x.OldLogp.device),
                x.OldLogp, x.AnchorLogp, x.LossMask, config.KlInRewardCoef, config.GroupSize)
            : x.Advantages;
        LossAggregationMode? klMode = config.KlAggMode == "same" ? null : LossAggregation.Parse(config.KlAggMode);
        double klSum = 0, objSum = 0, clipSum = 0, gnSum = 0, entSum = 0, sMean = 0, sMax = 0;
        int steps = 0, applied = 0;
        long skipped = 0, trainTokens = 0;
        for (int v = 0; v < config.InnerUpdates; v++)
        {
            var order = Enumerable.Range(0, (int)n).OrderBy(_ => shuffle.Next()).ToArray();
            int per = (int)Math.Ceiling(n / (double)config.Minibatches);
            for (int start = 0; start < n; start += per)
            {
                using var stepScope = NewDisposeScope();
                var idx = tensor(order.Skip(start).Take(per).Select(i => (long)i).ToArray(), device: policy.Device);
                var sampled = gen.ResponseIds.index_select(0, idx).reshape(-1);
                long b = idx.shape[0];
                var mb = x.LossMask.index_select(0, idx);
                var samplingLogp = x.SamplingLogp.index_select(0, idx);
                var anchorLogp = x.AnchorLogp.index_select(0, idx).reshape(-1);
                var q = x.Q?.index_select(0, idx).reshape(b * L, -1);
                var anchorLogpQ = x.AnchorLogpQ?.index_select(0, idx).reshape(b * L, -1);
                var oldLogpMb = x.OldLogp.index_select(0, idx);
                var advMb = advantages.index_select(0, idx);
                LossTerms terms;
                Tensor logp;             // log π_θ at the sampled tokens [b, L] (detached where only metrics read it)
                Func<Tensor> entropy;    // per token [b·L], only evaluated for the metric
                if (fused && policyLoss.TokenLocal && kl?.NeedsFullLogits != true)
                {
                    // Token-local loss: gradients formed in the head's forward pass, three GEMMs, no [b·L, |V|] tensor.
                    var rows = new RowChunkedLoss(config.KlBeta, new PolicyLossOptions(config.ClipEpsLow, config.ClipEpsHigh, config.DualClipC), kl, klOptions, policyLoss, aggregation, klMode, mb, oldLogpMb, advMb, sampled, samplingLogp.reshape(-1), anchorLogp, q, anchorLogpQ);
                    var (loss, outs) = Scorer.FusedLoss(policy, x.Sequences.index_select(0, idx), x.AttentionMask.index_select(0, idx), lp, rows.Compute, q);
                    terms = rows.Terms(loss);
                    logp = outs.LogpTarget.reshape(b, L);
                    entropy = () => outs.Entropy;
                }
                else
                {
                    (terms, logp, entropy) = Unchunked(x, idx, b, L, lp, sampled, samplingLogp, anchorLogp, q, anchorLogpQ, mb, oldLogpMb, advMb, aggregation, klMode);
                }
                steps++;
                using (no_grad())
                {
                    var valid = mb > 0;
                    var s = (logp - samplingLogp).exp().masked_select(valid);
                    sMean += s.mean().item<float>();
                    sMax = Math.Max(sMax, s.max().item<float>());
                    if (v == 0) entSum += entropy().reshape(b, L).masked_select(valid).sum().item<float>();
                }
                var step = GuardedStep.Apply(terms.Loss, optimizer, config.GradClip);
                if (!step.Applied) { skipped++; continue; }
                // A finite loss and gradient can still step to ±∞ (e.g. Adam with β₂ = 0).
                if (checkFinite && !FiniteCheck.All(policy.parameters()))
                    return Stats(true);
                applied++;
                klSum += terms.Kl.item<float>();
                objSum += terms.PolicyObjective.item<float>();
                clipSum += terms.ClipFraction.item<float>();
                gnSum += step.GradNorm;
                trainTokens += (long)mb.sum().item<float>();
            }
        }
        return Stats(false);

        UpdateStats Stats(bool nonFinite) => new(
            applied > 0 ? klSum / applied : double.NaN, applied > 0 ? objSum / applied : double.NaN, applied > 0 ? clipSum / applied : double.NaN,
            applied > 0 ? gnSum / applied : double.NaN, entSum, sMean / Math.Max(1, steps), sMax, applied, skipped, trainTokens, sw.Elapsed.TotalSeconds, nonFinite);
    }

    /// <summary>The loss through autograd over the head's outputs: full logits, or <see cref="TokenHead.Fused"/> for losses that are not token-local.</summary>
    private (LossTerms Terms, Tensor Logp, Func<Tensor> Entropy) Unchunked(Experience x, Tensor idx, long b, long L, long lp, Tensor sampled, Tensor samplingLogp,
        Tensor anchorLogp, Tensor? q, Tensor? anchorLogpQ, Tensor mb, Tensor oldLogp, Tensor adv, LossAggregationMode aggregation, LossAggregationMode? klMode)
    {
        KlInputs inputs;
        Func<Tensor> entropy;
        if (fused)
        {
            // From hidden states: the vocabulary is walked in chunks, forward and backward, so no [b·L, |V|] tensor exists.
            var hidden = policy.HiddenStates(x.Sequences.index_select(0, idx), x.AttentionMask.index_select(0, idx)).narrow(1, lp - 1, L);
            var head = TokenHead.Fused(hidden.reshape(b * L, hidden.shape[2]), policy.LmHeadWeight, sampled, q);
            inputs = KlInputs.FromHead(head, sampled, samplingLogp.reshape(-1), anchorLogp, q, anchorLogpQ);
            entropy = () => head.Entropy.detach();
        }
        else
        {
            var logits = policy.Forward(x.Sequences.index_select(0, idx), x.AttentionMask.index_select(0, idx)).narrow(1, lp - 1, L);
            long vocab = logits.shape[2];
            var flatLogits = logits.reshape(b * L, vocab);
            inputs = KlInputs.FromPolicyLogits(flatLogits, sampled, samplingLogp.reshape(-1), anchorLogp, q, anchorLogpQ);
            if (kl?.NeedsFullLogits == true)
                inputs = new KlInputs
                {
                    PolicyLogp = inputs.PolicyLogp, AnchorLogp = inputs.AnchorLogp, SamplingLogp = inputs.SamplingLogp,
                    PolicyLogits = flatLogits, AnchorLogits = x.AnchorFull!.index_select(0, idx).reshape(b * L, vocab),
                };
            entropy = () => { var lsm = flatLogits.detach().log_softmax(-1); return -(lsm.exp() * lsm).sum(-1); };
        }
        Tensor? klTok = kl?.Compute(inputs, klOptions, checkFinite: false).reshape(b, L);
        var logp = inputs.PolicyLogp.reshape(b, L);
        var terms = KlRegularizedLoss.Compute(logp, oldLogp, adv, mb, klTok, config.KlBeta,
            aggregation, config.ClipEpsLow, config.ClipEpsHigh, policyLoss, anchorLogp.reshape(b, L), config.DualClipC, klMode);
        return (terms, logp, entropy);
    }
}

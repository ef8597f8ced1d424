using System.Diagnostics;
using EmaPg.Common;
using EmaPg.Divergences;
using EmaPg.Model;
using EmaPg.Objectives;
using EmaPg.Rollout;
using EmaPg.Sampling;
using EmaPg.Tasks;
using EmaPg.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Training;

/// <summary>
/// Making experience, Alg. 3 lines 3–12: prompts for iteration t, N rollouts each from θ_old = θ, rewards, log-probs of
/// θ_old and of the anchor at the sampled tokens, the index set q and the anchor's log-probs at q, and advantages. Every
/// random draw is seeded from (seed, t), so a resumed run makes the same experience as an uninterrupted one.
/// </summary>
internal sealed class ExperienceMaker(TrainConfig config, ITask task, DivergenceEstimator? kl, AdvantageEstimator advantages, bool fused, IRolloutEngine rollout)
{
    /// <summary>|q|: k of Top-k estimators, capped by the vocabulary; 0 when the estimator needs no index set.</summary>
    private int K(CausalLM policy) => kl is null || kl.Index == IndexSource.None ? 0 : Math.Min(config.KlTopK, policy.Config.VocabSize);

    /// <summary>Throws <see cref="NonFiniteOutputError"/> when the policy's outputs are not finite (the trainer rolls back).</summary>
    public Experience Make(int t, CausalLM policy, CausalLM anchor)
    {
        var sw = Stopwatch.StartNew();
        var rng = new Random(SeedMix.MixInt(config.Seed, t, 1));
        var problems = Enumerable.Range(0, config.PromptsPerIteration).Select(_ => task.SampleTrain(rng)).ToList();
        var rolloutProblems = problems.SelectMany(p => Enumerable.Repeat(p, config.GroupSize)).ToList();
        bool reverseTopk = kl?.Index == IndexSource.SamplingPolicy;
        int k = K(policy);
        var tok = task.Tokenizer;
        GenerationResult gen;
        double[] rewards;
        IReadOnlyDictionary<string, double> engineMetrics;
        if (task is IRolloutEnvironment env)
        {
            // A multi-turn environment rolls the batch out itself; its response mask is the loss mask (observations 0).
            var batch = env.Rollout(policy, rolloutProblems, config.Temperature, reverseTopk ? k : 0, new Generator(SeedMix.Mix(config.Seed, t, 2)));
            (gen, rewards, engineMetrics) = (batch.Generation, batch.Rewards, batch.Metrics);
        }
        else
        {
            var rolled = rollout.Generate(policy, t, rolloutProblems.Select(task.EncodePrompt).ToList(), new SamplingOptions
            {
                Temperature = config.Temperature, MaxNewTokens = config.MaxNewTokens, StopTokens = [.. tok.EosTokenIds], PadToken = tok.PaddingId(),
                ReturnTopK = reverseTopk ? k : 0,
            }, SeedMix.Mix(config.Seed, t, 2));
            (gen, engineMetrics) = (rolled.Generation, rolled.Metrics);
            var responses = gen.ResponseTokens;
            rewards = rolloutProblems.Select((p, i) => task.Reward(p, responses[i])).ToArray();
        }
        var mask = gen.ResponseMask;
        long sampledTokens = (long)mask.sum().item<float>();
        double sampleSeconds = sw.Elapsed.TotalSeconds;

        Tensor oldLogp, anchorLogp;
        Tensor? q = null, anchorLogpQ = null, anchorFull;
        using (no_grad())
        {
            oldLogp = Scorer.Score(policy, gen, fused: fused).LogProbs;
            if (reverseTopk) q = gen.TopKIndices!;
            var anchorScore = Scorer.Score(anchor, gen, gatherIndices: q, topK: kl?.Index == IndexSource.Anchor ? k : 0, returnFull: kl?.NeedsFullLogits == true, fused: fused);
            anchorLogp = anchorScore.LogProbs;
            if (kl?.Index == IndexSource.Anchor) { q = anchorScore.TopKIndices!; anchorLogpQ = anchorScore.TopKLogProbs!; }
            else if (reverseTopk) anchorLogpQ = anchorScore.GatheredLogProbs!;
            anchorFull = anchorScore.FullLogProbs;
        }
        var rolloutMetrics = new Dictionary<string, double>(engineMetrics);
        if (gen.WeightVersions is not null) rolloutMetrics["rollout_logp_gap"] = LogpGap(policy, gen, oldLogp);
        var r = tensor(rewards, dtype: float32, device: policy.Device);
        return new Experience
        {
            Problems = rolloutProblems, Generation = gen, Sequences = gen.Sequences(), AttentionMask = gen.AttentionMask(), LossMask = mask,
            SamplingLogp = gen.LogProbs, OldLogp = oldLogp, AnchorLogp = anchorLogp, Q = q, AnchorLogpQ = anchorLogpQ, AnchorFull = anchorFull,
            Rewards = rewards, Advantages = advantages.Compute(r, config.GroupSize), SampledTokens = sampledTokens, SampleSeconds = sampleSeconds,
            RolloutMetrics = rolloutMetrics,
        };
    }

    /// <summary>Mean |log π_server − log π_θold| over response tokens, both at the sampling temperature: how far the
    /// server's numerics (e.g. BF16) or a stale weight version put its log-probs from the trainer's.</summary>
    private double LogpGap(CausalLM policy, GenerationResult gen, Tensor oldLogp)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var trainer = config.Temperature == 1.0 ? oldLogp : Scorer.Score(policy, gen, temperature: config.Temperature).LogProbs;
        var mask = gen.ResponseMask;
        return ((gen.LogProbs - trainer).abs() * mask).sum().item<float>() / Math.Max(1f, mask.sum().item<float>());
    }
}

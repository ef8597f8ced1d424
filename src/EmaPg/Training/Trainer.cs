using System.Diagnostics;
using EmaPg.Anchor;
using EmaPg.Common;
using EmaPg.Divergences;
using EmaPg.Eval;
using EmaPg.Model;
using EmaPg.Objectives;
using EmaPg.Optim;
using EmaPg.Sampling;
using EmaPg.Stability;
using EmaPg.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Training;

/// <summary>What the trainer reports after each iteration (for progress bars and tests).</summary>
public sealed record IterationReport(int Iteration, int Total, IReadOnlyDictionary<string, double> Metrics);

/// <summary>Everything a finished run reports; written to summary.json. WallSeconds is RL time over all sessions of the run; TotalSeconds this process's whole time (cold start, evaluations, RL).</summary>
public sealed record TrainSummary(
    double BasePass1, double BasePassK, double FinalPass1, double FinalPassK, int K, int Iterations, double WallSeconds,
    double TrainTokensPerSecond, double SampleTokensPerSecond, long SkippedSteps, string Preset, string KlEstimator, int Seed, double TotalSeconds = double.NaN);

/// <summary>
/// Algorithm 3 (EMA Policy Gradient with Top-k KL), one iteration at a time:
/// θ_old ← θ samples N responses per prompt (lines 4–5); log-probs of π_old and of the anchor π_ema at the
/// sampled tokens and, for Top-k KL, the anchor's log-probs at q = top-k of π_old (reverse) or of π_ema
/// (forward) (lines 6–11); group advantages (line 12); Λ passes of mini-batch AdamW steps on
/// −J + β·KL̂ with importance weights s and the clip-higher mask (lines 13–24); the EMA anchor update every
/// T_ema iterations (lines 25–27). Sampling, shuffling and prompts are seeded per iteration, so a resumed run
/// repeats exactly what an uninterrupted one does.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly TrainConfig _c;
    private readonly ITask _task;
    private readonly CausalLM _policy;
    private readonly CausalLM _anchor;
    private readonly AdamW _opt;
    private readonly EmaAnchor _ema;
    private readonly DivergenceEstimator? _kl;
    private readonly EstimatorOptions _klOpts;
    private readonly LossAggregationMode _agg;
    private readonly Device _device;
    private TrainerState _state;

    public TrainerState State => _state;
    public CausalLM Policy => _policy;
    public CausalLM AnchorModel => _anchor;

    public Trainer(TrainConfig config, ITask task, CausalLM basePolicy, double basePass1, double basePassK)
    {
        _c = config;
        _task = task;
        _device = basePolicy.Device;
        _policy = basePolicy.Clone();
        _policy.train();
        _anchor = basePolicy.Clone();   // Alg. 3 line 1: θ_ema ← θ
        _anchor.eval();
        foreach (var p in _anchor.parameters()) p.requires_grad = false;
        _opt = new AdamW(_policy.parameters(), config.LearningRate, config.AdamBeta1, config.AdamBeta2, config.AdamEps, config.WeightDecay);
        _ema = new EmaAnchor(config.EmaEta, config.EmaPeriod);
        _kl = config.KlBeta > 0 ? Estimators.Get(config.KlEstimator) : null;
        _klOpts = new EstimatorOptions { SMin = config.IsClipMin, SMax = config.IsClipMax }.Validated();
        _agg = LossAggregation.Parse(config.LossAggMode);
        if (_kl is not null && _kl.Index != IndexSource.None && config.KlTopK > basePolicy.Config.VocabSize)
            throw new UserError($"kl_topk must be ≤ the vocabulary size ({basePolicy.Config.VocabSize}), got {config.KlTopK}.");
        _state = new TrainerState { BasePass1 = basePass1, BasePassK = basePassK };
    }

    /// <summary>The tensors a checkpoint holds, by name.</summary>
    public IReadOnlyDictionary<string, Tensor> CheckpointTensors()
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (n, p) in _policy.named_parameters()) d["policy/" + n] = p;
        foreach (var (n, p) in _anchor.named_parameters()) d["anchor/" + n] = p;
        foreach (var (n, t) in _opt.StateTensors()) d["adamw/" + n] = t;
        return d;
    }

    public void SaveCheckpoint(string path) =>
        TrainerCheckpoint.Save(path, _state with { }, CheckpointTensors().Select(kv => (kv.Key, kv.Value)).Append(("adamw/step", tensor((float)_opt.StepCount))));

    public void LoadCheckpoint(string path)
    {
        var step = zeros(1).squeeze();
        var into = new Dictionary<string, Tensor>(CheckpointTensors()) { ["adamw/step"] = step };
        _state = TrainerCheckpoint.Load(path, into);
        _opt.StepCount = (long)step.item<float>();
    }

    private static int Mix(int seed, int iteration, int salt) => SeedMix.MixInt(seed, iteration, salt);

    /// <summary>Runs iteration t (1-based) and returns its metrics.</summary>
    public Dictionary<string, double> Iteration(int t)
    {
        var m = new Dictionary<string, double>();
        using var scope = NewDisposeScope();
        var sw = Stopwatch.StartNew();

        // Lines 3–5: prompts and rollouts from θ_old = θ.
        var rng = new Random(Mix(_c.Seed, t, 1));
        var problems = Enumerable.Range(0, _c.PromptsPerIteration).Select(_ => _task.SampleTrain(rng)).ToList();
        var rolloutProblems = problems.SelectMany(p => Enumerable.Repeat(p, _c.GroupSize)).ToList();
        var prompts = rolloutProblems.Select(_task.EncodePrompt).ToList();
        bool reverseTopk = _kl?.Index == IndexSource.SamplingPolicy;
        int k = _kl is null || _kl.Index == IndexSource.None ? 0 : Math.Min(_c.KlTopK, _policy.Config.VocabSize);
        var tok = _task.Tokenizer;
        var gen = Sampler.Generate(_policy, prompts, new SamplingOptions
        {
            Temperature = _c.Temperature, MaxNewTokens = _c.MaxNewTokens, StopTokens = [tok.EosId], PadToken = tok.PadId,
            ReturnTopK = reverseTopk ? k : 0,
        }, new Generator(SeedMix.Mix(_c.Seed, t, 2)));
        var mask = gen.ResponseMask;
        long sampledTokens = (long)mask.sum().item<float>();
        double sampleSeconds = sw.Elapsed.TotalSeconds;

        var rewards = rolloutProblems.Select((p, i) => _task.Reward(p, gen.ResponseTokens[i])).ToArray();
        m["reward_mean"] = rewards.Average();
        m["train_accuracy"] = rewards.Count(r => r >= 1.0) / (double)rewards.Length;
        m["response_length"] = sampledTokens / (double)rewards.Length;
        if (_c.StabilityMonitor) LogStability(m, gen, mask);

        // Line 6: log π_old and log π_ema at the sampled tokens; lines 7–11: the index set q.
        Tensor oldLogp, anchorLogp;
        Tensor? q = null, anchorLogpQ = null, anchorFull = null;
        using (no_grad())
        {
            oldLogp = Scorer.Score(_policy, gen).LogProbs;
            if (reverseTopk) q = gen.TopKIndices!;
            var anchorScore = Scorer.Score(_anchor, gen, gatherIndices: q, topK: _kl?.Index == IndexSource.Anchor ? k : 0, returnFull: _kl?.NeedsFullLogits == true);
            anchorLogp = anchorScore.LogProbs;
            if (_kl?.Index == IndexSource.Anchor) { q = anchorScore.TopKIndices!; anchorLogpQ = anchorScore.TopKLogProbs!; }
            else if (reverseTopk) anchorLogpQ = anchorScore.GatheredLogProbs!;
            anchorFull = anchorScore.FullLogProbs;
        }

        // Line 12: advantages.
        var r = tensor(rewards, dtype: float32, device: _device);
        var adv = _c.AdvantageNorm switch
        {
            "group" => GroupAdvantage.Compute(r, _c.GroupSize),
            "global" => GlobalAdvantageNormalization.Compute(r, _c.GroupSize),
            _ => GroupAdvantage.Compute(r, _c.GroupSize, divideByStd: false),
        };

        // Lines 13–24: Λ passes of mini-batch updates.
        var trainSw = Stopwatch.StartNew();
        var seqs = gen.Sequences();
        var attn = gen.AttentionMask();
        long lp = gen.PromptLength, L = gen.ResponseLength, n = seqs.shape[0];
        var shuffle = new Random(Mix(_c.Seed, t, 3));
        double klSum = 0, objSum = 0, clipSum = 0, gnSum = 0, entSum = 0, sMean = 0, sMax = 0;
        int steps = 0, applied = 0;
        long skipped = 0, trainTokens = 0;
        for (int v = 0; v < _c.InnerUpdates; v++)
        {
            var order = Enumerable.Range(0, (int)n).OrderBy(_ => shuffle.Next()).ToArray();
            int per = (int)Math.Ceiling(n / (double)_c.Minibatches);
            for (int start = 0; start < n; start += per)
            {
                using var stepScope = NewDisposeScope();
                var idx = tensor(order.Skip(start).Take(per).Select(i => (long)i).ToArray(), device: _device);
                var logits = _policy.Forward(seqs.index_select(0, idx), attn.index_select(0, idx)).narrow(1, lp - 1, L);
                long b = idx.shape[0], vocab = logits.shape[2];
                var sampled = gen.ResponseIds.index_select(0, idx).reshape(-1);
                var flatLogits = logits.reshape(b * L, vocab);
                var mb = mask.index_select(0, idx);
                var x = KlInputs.FromPolicyLogits(flatLogits, sampled, gen.LogProbs.index_select(0, idx).reshape(-1), anchorLogp.index_select(0, idx).reshape(-1),
                    q?.index_select(0, idx).reshape(b * L, -1), anchorLogpQ?.index_select(0, idx).reshape(b * L, -1));
                Tensor? klTok = null;
                if (_kl is not null)
                {
                    if (_kl.NeedsFullLogits)
                        x = new KlInputs
                        {
                            PolicyLogp = x.PolicyLogp, AnchorLogp = x.AnchorLogp, SamplingLogp = x.SamplingLogp,
                            PolicyLogits = flatLogits, AnchorLogits = anchorFull!.index_select(0, idx).reshape(b * L, vocab),
                        };
                    klTok = _kl.Compute(x, _klOpts, checkFinite: false).reshape(b, L);
                }
                var logp = x.PolicyLogp.reshape(b, L);
                var terms = KlRegularizedLoss.Compute(logp, oldLogp.index_select(0, idx), adv.index_select(0, idx), mb, klTok, _c.KlBeta, _agg, _c.ClipEpsLow, _c.ClipEpsHigh);
                steps++;
                using (no_grad())
                {
                    var valid = mb > 0;
                    var s = (logp - gen.LogProbs.index_select(0, idx)).exp().masked_select(valid);
                    sMean += s.mean().item<float>();
                    sMax = Math.Max(sMax, s.max().item<float>());
                    if (v == 0)
                    {
                        var lsm = logits.log_softmax(-1);
                        entSum += (-(lsm.exp() * lsm).sum(-1)).masked_select(valid).sum().item<float>();
                    }
                }
                var step = GuardedStep.Apply(terms.Loss, _opt, _c.GradClip);
                if (!step.Applied) { skipped++; continue; }
                double gn = step.GradNorm;
                applied++;
                klSum += terms.Kl.item<float>();
                objSum += terms.PolicyObjective.item<float>();
                clipSum += terms.ClipFraction.item<float>();
                gnSum += gn;
                trainTokens += (long)mb.sum().item<float>();
            }
        }
        double trainSeconds = trainSw.Elapsed.TotalSeconds;

        // Lines 25–27: the EMA anchor.
        bool updated = _ema.MaybeUpdate(_anchor, _policy, t);

        m["kl"] = applied > 0 ? klSum / applied : double.NaN;
        m["pg_objective"] = applied > 0 ? objSum / applied : double.NaN;
        m["clip_fraction"] = applied > 0 ? clipSum / applied : double.NaN;
        m["grad_norm"] = applied > 0 ? gnSum / applied : double.NaN;
        m["entropy"] = entSum / Math.Max(1, sampledTokens);
        m["is_weight_mean"] = sMean / Math.Max(1, steps);
        m["is_weight_max"] = sMax;
        m["ema_lag"] = EmaAnchor.Lag(_anchor, _policy);
        m["anchor_updated"] = updated ? 1 : 0;
        m["skipped_steps"] = skipped;
        m["sample_tokens_per_second"] = sampledTokens / Math.Max(1e-9, sampleSeconds);
        m["train_tokens_per_second"] = trainTokens / Math.Max(1e-9, trainSeconds);
        m["iteration_seconds"] = sw.Elapsed.TotalSeconds;

        _state = _state with
        {
            Iteration = t, SkippedSteps = _state.SkippedSteps + skipped,
            SampleTokens = _state.SampleTokens + sampledTokens, SampleSeconds = _state.SampleSeconds + sampleSeconds,
            TrainTokens = _state.TrainTokens + trainTokens, TrainSeconds = _state.TrainSeconds + trainSeconds,
            WallSeconds = _state.WallSeconds + sw.Elapsed.TotalSeconds,
        };
        return m;
    }

    /// <summary>Sequences per iteration whose score norms estimate tr F (one per group, so prompts differ).</summary>
    public const int StabilitySequences = 8;

    /// <summary>
    /// App. C, eq. 28: tr F = E‖∇_θ log π_θ(y|x)‖² bounds λ_max(F); the rollouts are on-policy for θ = θ_old, so
    /// it runs before any update. The margin αβλ̂ uses the optimiser's nominal step α (Adam rescales it per
    /// parameter, so this is the paper's SGD-linearised margin, not a guarantee for AdamW).
    /// </summary>
    private void LogStability(Dictionary<string, double> m, GenerationResult gen, Tensor mask)
    {
        using var scope = NewDisposeScope();
        long n = gen.ResponseIds.shape[0];
        var rows = Enumerable.Range(0, (int)Math.Min(StabilitySequences, n / _c.GroupSize)).Select(i => (long)i * _c.GroupSize).ToArray();
        if (rows.Length == 0) rows = [0];
        var idx = tensor(rows, device: _device);
        var seqs = gen.Sequences().index_select(0, idx);
        var attn = gen.AttentionMask().index_select(0, idx);
        var mb = mask.index_select(0, idx);
        var est = FisherTrace.Estimate(_policy, () => (Scorer.Score(_policy, seqs, attn, gen.PromptLength).LogProbs * mb).sum(1));
        double margin = _c.LearningRate * _c.KlBeta * est.LambdaMaxUpperBound;
        m["fisher_trace"] = est.Trace;
        m["stability_margin"] = margin;
        // Distance to the instability boundary 1 + η of eq. 9 (> 0: stable even for the upper bound).
        m["stability_headroom"] = 1 + _c.EmaEta - margin;
    }

    /// <summary>pass@1 and pass@k of the current policy on the fixed test split.</summary>
    public (double Pass1, double PassK) Evaluate()
    {
        var res = Evaluator.Evaluate(_policy, _task, new EvalOptions
        {
            SamplesPerProblem = _c.EvalSamples, Ks = _c.PassK == 1 ? [1] : [1, _c.PassK], MaxProblems = _c.EvalProblems, Seed = 12345,
        });
        return (res.PassAtK[1], res.PassAtK[_c.PassK]);
    }

    public void Dispose()
    {
        _opt.Dispose();
        _policy.Dispose();
        _anchor.Dispose();
    }
}

using System.Diagnostics;
using EmaPg.Anchor;
using EmaPg.Common;
using EmaPg.Divergences;
using EmaPg.Eval;
using EmaPg.Model;
using EmaPg.Objectives;
using EmaPg.Optim;
using EmaPg.Rollout;
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
    private readonly ExperienceMaker _maker;
    private readonly PolicyUpdater _updater;
    private readonly Device _device;
    private readonly StateSnapshot? _snapshot;
    private int _consecutiveRollbacks;
    private TrainerState _state;

    /// <summary>Iterations in a row that needed a rollback before the run is declared diverged.</summary>
    public const int MaxConsecutiveRollbacks = 3;

    public TrainerState State => _state;
    public CausalLM Policy => _policy;
    public CausalLM AnchorModel => _anchor;

    /// <param name="rollout">where rollouts are sampled; null = in-process (<see cref="LocalRolloutEngine"/>). Not owned.</param>
    public Trainer(TrainConfig config, ITask task, CausalLM basePolicy, double basePass1, double basePassK, IRolloutEngine? rollout = null)
    {
        _c = config;
        _task = task;
        _device = basePolicy.Device;
        _policy = basePolicy.Clone();
        _policy.train();
        _policy.ActivationCheckpointing = ConfigSchema.UseActivationCheckpointing(config, _policy.ParameterCount);
        _anchor = basePolicy.Clone(ConfigSchema.AnchorScalarType(config));   // Alg. 3 line 1: θ_ema ← θ
        _anchor.eval();
        foreach (var p in _anchor.parameters()) p.requires_grad = false;
        _opt = new AdamW(_policy.parameters(), config.LearningRate, config.AdamBeta1, config.AdamBeta2, config.AdamEps, config.WeightDecay);
        _ema = new EmaAnchor(config.EmaEta, config.EmaPeriod);
        var kl = config.KlBeta > 0 ? Estimators.Get(config.KlEstimator) : null;
        if (kl is not null && kl.Index != IndexSource.None && config.KlTopK > basePolicy.Config.VocabSize)
            throw new UserError($"kl_topk must be ≤ the vocabulary size ({basePolicy.Config.VocabSize}), got {config.KlTopK}.");
        bool fused = ConfigSchema.UseFusedHead(config, basePolicy.Config.VocabSize, kl);
        _maker = new ExperienceMaker(config, task, kl, Advantages.Get(config.AdvantageNorm), fused, rollout ?? new LocalRolloutEngine());
        _updater = new PolicyUpdater(config, _policy, _opt, kl, new EstimatorOptions { SMin = config.IsClipMin, SMax = config.IsClipMax }.Validated(),
            LossAggregation.Parse(config.LossAggMode), PolicyLosses.Get(config.PolicyLoss), checkFinite: config.GuardSnapshots, fused);
        _state = new TrainerState { BasePass1 = basePass1, BasePassK = basePassK };
        if (config.GuardSnapshots) _snapshot = new StateSnapshot(CheckpointTensors().Values);
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
        TrainerCheckpoint.Save(path, _state with { OptimizerSteps = _opt.StepCount }, CheckpointTensors().Select(kv => (kv.Key, kv.Value)));

    public void LoadCheckpoint(string path)
    {
        _state = TrainerCheckpoint.Load(path, CheckpointTensors());
        _opt.StepCount = _state.OptimizerSteps;
        _snapshot?.Invalidate();
    }

    /// <summary>
    /// Re-reads a just-written checkpoint from disk before it replaces the previous one: the checksum over every byte
    /// (computed from the tensors while writing) and the tensor table must match this trainer's state.
    /// </summary>
    public void VerifyCheckpoint(string path)
    {
        using var r = Common.TensorFile.Open(path, TrainerCheckpoint.Kind);
        var live = CheckpointTensors();
        if (r.Tensors.Count != live.Count || live.Any(kv => !r.Tensors.TryGetValue(kv.Key, out var e) || !e.Shape.SequenceEqual(kv.Value.shape)))
            throw new IOException($"checkpoint '{path}' does not read back as written.");
    }

    /// <summary>Writes the policy and the anchor as Hugging Face folders (policy/, anchor/) of <paramref name="dir"/>, with the tokenizer files of <paramref name="tokenizerDir"/>.</summary>
    public void SaveModelFolders(RunDirectory dir, Model.HuggingFace.HfConfig config, string? tokenizerDir)
    {
        dir.ReplaceFolder(RunDirectory.PolicyFolder, p => Model.HuggingFace.HfCheckpoint.Save(_policy, config, p, tokenizerDir));
        dir.ReplaceFolder(RunDirectory.AnchorFolder, p => Model.HuggingFace.HfCheckpoint.Save(_anchor, config, p, tokenizerDir));
    }

    /// <summary>Whether iteration t ends with a checkpoint.</summary>
    public static bool IsCheckpointIteration(TrainConfig c, int t) => t % c.CheckpointEvery == 0 || t == c.Iterations;

    /// <summary>Runs iteration t (1-based) and returns its metrics: make experience, (monitor), update, roll back if needed, anchor.</summary>
    public Dictionary<string, double> Iteration(int t)
    {
        var m = new Dictionary<string, double>();
        using var scope = NewDisposeScope();
        var sw = Stopwatch.StartNew();
        int rollbacks = 0;
        Experience x;
        try { x = _maker.Make(t, _policy, _anchor); }
        catch (NonFiniteOutputError e)
        {
            // The updates since the last good rollout made the policy's outputs non-finite: undo them and sample again.
            if (_snapshot?.IsValid != true) throw new RunDivergedError($"iteration {t}: {e.Message} No earlier state is kept to roll back to (guard_snapshots = false or just resumed).");
            RollBack();
            rollbacks++;
            try { x = _maker.Make(t, _policy, _anchor); }
            catch (NonFiniteOutputError e2) { throw new RunDivergedError($"iteration {t}: {e2.Message} (also after rolling back)."); }
        }
        _snapshot?.Take(_opt.StepCount);   // this state's outputs were finite: the point to roll back to

        m["reward_mean"] = x.Rewards.Average();
        m["train_accuracy"] = x.Rewards.Count(r => r >= 1.0) / (double)x.Rewards.Length;
        m["response_length"] = x.SampledTokens / (double)x.Rewards.Length;
        if (_c.StabilityMonitor) LogStability(m, x);

        var u = _updater.Update(x, t);
        bool undone = u.LeftNonFiniteParameters;
        if (undone) { RollBack(); rollbacks++; }
        // A checkpoint must hold a policy whose outputs are finite, not only its parameters: probe before it is written.
        else if (_snapshot is not null && IsCheckpointIteration(_c, t) && !OutputsFinite(x.Sequences, x.AttentionMask))
        {
            RollBack();
            rollbacks++;
        }

        // Lines 25–27: the EMA anchor.
        bool updated = _ema.MaybeUpdate(_anchor, _policy, t);
        _consecutiveRollbacks = rollbacks > 0 ? _consecutiveRollbacks + 1 : 0;
        if (_consecutiveRollbacks >= MaxConsecutiveRollbacks)
            throw new RunDivergedError($"training diverged: {MaxConsecutiveRollbacks} iterations in a row (up to {t}) produced non-finite parameters or outputs and were rolled back.");

        m["kl"] = u.Kl;
        m["pg_objective"] = u.PolicyObjective;
        m["clip_fraction"] = u.ClipFraction;
        m["grad_norm"] = u.GradNorm;
        m["entropy"] = u.EntropySum / Math.Max(1, x.SampledTokens);
        m["is_weight_mean"] = u.IsWeightMean;
        m["is_weight_max"] = u.IsWeightMax;
        m["ema_lag"] = EmaAnchor.Lag(_anchor, _policy);
        m["anchor_updated"] = updated ? 1 : 0;
        m["skipped_steps"] = u.Skipped;
        m["rolled_back"] = rollbacks;
        m["sample_tokens_per_second"] = x.SampledTokens / Math.Max(1e-9, x.SampleSeconds);
        m["train_tokens_per_second"] = u.TrainTokens / Math.Max(1e-9, u.Seconds);
        m["iteration_seconds"] = sw.Elapsed.TotalSeconds;
        foreach (var (key, value) in x.RolloutMetrics) m[key] = value;

        _state = _state with
        {
            Iteration = t, SkippedSteps = _state.SkippedSteps + u.Skipped, RolledBackSteps = _state.RolledBackSteps + rollbacks,
            SampleTokens = _state.SampleTokens + x.SampledTokens, SampleSeconds = _state.SampleSeconds + x.SampleSeconds,
            TrainTokens = _state.TrainTokens + u.TrainTokens, TrainSeconds = _state.TrainSeconds + u.Seconds,
            WallSeconds = _state.WallSeconds + sw.Elapsed.TotalSeconds,
        };
        return m;
    }

    private void RollBack() => _opt.StepCount = _snapshot!.Restore();

    private bool OutputsFinite(Tensor seqs, Tensor attn)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long rows = Math.Min(4, seqs.shape[0]);
        return FiniteCheck.All([_policy.Forward(seqs.narrow(0, 0, rows), attn.narrow(0, 0, rows))]);
    }

    /// <summary>Sequences per iteration whose score norms estimate tr F (one per group, so prompts differ).</summary>
    public const int StabilitySequences = 8;

    /// <summary>
    /// App. C, eq. 28: tr F = E‖∇_θ log π_θ(y|x)‖² bounds λ_max(F); the rollouts are on-policy for θ = θ_old, so
    /// it runs before any update. The margin αβλ̂ uses the optimiser's nominal step α (Adam rescales it per
    /// parameter, so this is the paper's SGD-linearised margin, not a guarantee for AdamW).
    /// </summary>
    private void LogStability(Dictionary<string, double> m, Experience x)
    {
        var gen = x.Generation;
        var mask = x.LossMask;
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
        // Distance to the instability boundary of this trainer's schedule, 1 + η^(−1/S) with S optimiser steps per anchor update
        // (TrainerSchedule; eq. 9's 1 + η is for §4's order). > 0 guarantees stability of the linearised lag, nothing more.
        m["stability_headroom"] = TrainerSchedule.UnstableBoundary(_c.EmaEta, TrainerSchedule.StepsPerAnchorUpdate(_c.EmaPeriod, _c.InnerUpdates, _c.Minibatches)) - margin;
    }

    /// <summary>pass@1 and pass@k of the current policy on the fixed test split.</summary>
    public (double Pass1, double PassK) Evaluate()
    {
        EvalResult Run() => Evaluator.Evaluate(_policy, _task, new EvalOptions
        {
            SamplesPerProblem = _c.EvalSamples, Ks = _c.PassK == 1 ? [1] : [1, _c.PassK], MaxProblems = _c.EvalProblems, Seed = 12345,
        });
        EvalResult res;
        try { res = Run(); }
        catch (NonFiniteOutputError e)
        {
            if (_snapshot?.IsValid != true) throw new RunDivergedError($"evaluation after iteration {_state.Iteration}: {e.Message}");
            RollBack();
            _state = _state with { RolledBackSteps = _state.RolledBackSteps + 1 };
            res = Run();
        }
        return (res.PassAtK[1], res.PassAtK[_c.PassK]);
    }

    public void Dispose()
    {
        _snapshot?.Dispose();
        _opt.Dispose();
        _policy.Dispose();
        _anchor.Dispose();
    }
}

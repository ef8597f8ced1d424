using System.Globalization;
using EmaPg.Common;
using EmaPg.Divergences;
using EmaPg.Objectives;

namespace EmaPg.Training;

/// <summary>One configuration key: its name, documentation, and how to read, check and write it.</summary>
public sealed record ConfigKey(string Name, string Section, string Help, Func<TrainConfig, string> Get, Func<TrainConfig, string, TrainConfig> Set)
{
    /// <summary>The command-line spelling: --kl-beta for kl_beta.</summary>
    public string Option => "--" + Name.Replace('_', '-');
}

/// <summary>
/// The single list of configuration keys: config files, presets and command-line options are all
/// generated from it, so a key can never be settable in one place and unknown in another. Values are
/// validated as they are set, and every message names the key and its allowed range.
/// </summary>
public static class ConfigSchema
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    // The range in --help and in every error message is the one string Check enforces, so they cannot disagree.
    private static ConfigKey Int(string name, string section, string help, int min, int max, Func<TrainConfig, int> get, Func<TrainConfig, int, TrainConfig> set)
    {
        string range = $"[{min.ToString(Inv)}, {max.ToString(Inv)}]";
        return new(name, section, $"{help} {range}", c => get(c).ToString(Inv), (c, s) =>
        {
            if (!int.TryParse(s.Trim(), NumberStyles.Integer, Inv, out var v) || v < min || v > max) throw new UserError($"{name} must be an integer in {range}, got '{s.Trim()}'.");
            return set(c, v);
        });
    }

    private static ConfigKey Real(string name, string section, string help, double min, double max, Func<TrainConfig, double> get, Func<TrainConfig, double, TrainConfig> set, bool minOpen = false, bool maxOpen = false)
    {
        string range = $"{(minOpen ? "(" : "[")}{min.ToString(Inv)}, {(double.IsPositiveInfinity(max) ? "∞" : max.ToString(Inv))}{(maxOpen ? ")" : "]")}";
        return new(name, section, $"{help} {range}", c => get(c).ToString("R", Inv), (c, s) =>
        {
            var t = s.Trim();
            double v = t is "inf" or "∞" ? double.PositiveInfinity : double.TryParse(t, NumberStyles.Float, Inv, out var d) ? d : double.NaN;
            bool ok = !double.IsNaN(v) && (minOpen ? v > min : v >= min) && (maxOpen ? v < max : v <= max);
            if (!ok) throw new UserError($"{name} must be a number in {range}, got '{t}'.");
            return set(c, v);
        });
    }

    private static ConfigKey Choice(string name, string section, string help, Func<IEnumerable<string>> choices, Func<TrainConfig, string> get, Func<TrainConfig, string, TrainConfig> set) =>
        new(name, section, $"{help}; one of: {string.Join(", ", choices())}", get, (c, s) => set(c, Check.OneOf(name, s.Trim(), choices())));

    private static ConfigKey Bool(string name, string section, string help, Func<TrainConfig, bool> get, Func<TrainConfig, bool, TrainConfig> set) =>
        new(name, section, $"{help} (true/false)", c => get(c) ? "true" : "false", (c, s) => s.Trim().ToLowerInvariant() switch
        {
            "true" or "1" or "yes" => set(c, true),
            "false" or "0" or "no" => set(c, false),
            _ => throw new UserError($"{name} must be true or false, got '{s}'."),
        });

    public static readonly IReadOnlyList<string> Presets = ["grpo", "ema-anchor", "ema-pg-reverse", "ema-pg-forward"];

    public static readonly IReadOnlyList<ConfigKey> Keys =
    [
        Choice("preset", "run", "named preset the run started from", () => Presets, c => c.Preset, (c, v) => c with { Preset = v }),
        Int("seed", "run", "seed of sampling, initialisation and prompts", 0, int.MaxValue, c => c.Seed, (c, v) => c with { Seed = v }),
        Int("iterations", "run", "RL iterations (Alg. 3 outer loop)", 1, 1_000_000, c => c.Iterations, (c, v) => c with { Iterations = v }),
        Choice("device", "run", "tensor device", () => ["cpu", "cuda"], c => c.Device, (c, v) => c with { Device = v }),
        Int("threads", "run", "intra-op CPU threads, 0 = TorchSharp's default", 0, 256, c => c.Threads, (c, v) => c with { Threads = v }),

        Int("task_min_digits", "task", "fewest digits of an operand", 1, 9, c => c.TaskMinDigits, (c, v) => c with { TaskMinDigits = v }),
        Int("task_max_digits", "task", "most digits of an operand", 1, 9, c => c.TaskMaxDigits, (c, v) => c with { TaskMaxDigits = v }),
        new ConfigKey("task_operators", "task", "operators drawn for problems, a subset of + -", c => c.TaskOperators, (c, v) =>
        {
            var ops = v.Trim();
            if (ops.Length == 0 || ops.Any(ch => "+-".IndexOf(ch) < 0) || ops.Distinct().Count() != ops.Length)
                throw new UserError($"task_operators must be a non-empty set of distinct characters from '+-', got '{v}'.");
            return c with { TaskOperators = ops };
        }),
        Int("vocab_size", "model", "model vocabulary, padded beyond the task's 16 character tokens (like LLM vocabularies) so Top-k with k = 32 has a tail", 16, 1 << 20, c => c.VocabSize, (c, v) => c with { VocabSize = v }),
        Int("hidden_size", "model", "transformer width", 8, 8192, c => c.HiddenSize, (c, v) => c with { HiddenSize = v }),
        Int("intermediate_size", "model", "SwiGLU MLP width", 8, 32768, c => c.IntermediateSize, (c, v) => c with { IntermediateSize = v }),
        Int("num_layers", "model", "decoder layers", 1, 128, c => c.NumLayers, (c, v) => c with { NumLayers = v }),
        Int("num_heads", "model", "attention heads (must divide hidden_size)", 1, 256, c => c.NumHeads, (c, v) => c with { NumHeads = v }),
        Int("num_kv_heads", "model", "key/value heads of grouped-query attention (must divide num_heads)", 1, 256, c => c.NumKvHeads, (c, v) => c with { NumKvHeads = v }),
        Int("sft_steps", "cold start", "supervised cold-start steps (cached by settings)", 0, 1_000_000, c => c.SftSteps, (c, v) => c with { SftSteps = v }),
        Int("sft_batch", "cold start", "cold-start batch size", 1, 65536, c => c.SftBatch, (c, v) => c with { SftBatch = v }),
        Real("sft_learning_rate", "cold start", "cold-start peak learning rate", 0, 1, c => c.SftLearningRate, (c, v) => c with { SftLearningRate = v }, minOpen: true),

        Int("prompts_per_iteration", "rollout", "prompts sampled per iteration", 1, 4096, c => c.PromptsPerIteration, (c, v) => c with { PromptsPerIteration = v }),
        Int("group_size", "rollout", "responses per prompt N (group advantages need N ≥ 2)", 2, 1024, c => c.GroupSize, (c, v) => c with { GroupSize = v }),
        Real("temperature", "rollout", "sampling temperature", 0, 10, c => c.Temperature, (c, v) => c with { Temperature = v }, minOpen: true),
        Int("max_new_tokens", "rollout", "response length limit", 1, 4096, c => c.MaxNewTokens, (c, v) => c with { MaxNewTokens = v }),

        Int("inner_updates", "objective", "Λ, passes over the rollout batch per iteration (Alg. 3 line 13)", 1, 64, c => c.InnerUpdates, (c, v) => c with { InnerUpdates = v }),
        Int("minibatches", "objective", "optimiser steps per pass (the rollout batch is split evenly)", 1, 4096, c => c.Minibatches, (c, v) => c with { Minibatches = v }),
        Real("clip_eps_low", "objective", "ε_low of clip-higher", 0, 1, c => c.ClipEpsLow, (c, v) => c with { ClipEpsLow = v }),
        Real("clip_eps_high", "objective", "ε_high of clip-higher", 0, 10, c => c.ClipEpsHigh, (c, v) => c with { ClipEpsHigh = v }),
        Choice("advantage_norm", "objective", "group: (R − mean)/std per prompt (App. A); global: z-score over the batch (App. B); none: R − mean", () => Advantages.Names, c => c.AdvantageNorm, (c, v) => c with { AdvantageNorm = v }),
        Choice("fused_head", "objective", $"token log-probs, entropy and Top-k terms from hidden states with the vocabulary-chunked fused head, never an N×|V| tensor (estimators that need full logits always use them); auto = on from |V| ≥ {FusedHeadAutoVocab}", () => ["auto", "on", "off"], c => c.FusedHead, (c, v) => c with { FusedHead = v }),
        Choice("activation_checkpointing", "objective", $"per decoder layer, keep only each layer's input and recompute its forward in the backward pass (one more forward per update, a fraction of the activation memory; gradients unchanged); auto = on from {CheckpointingAutoParameters / 1_000_000}M parameters", () => ["auto", "on", "off"], c => c.ActivationCheckpointing, (c, v) => c with { ActivationCheckpointing = v }),
        Choice("policy_loss", "objective", "policy-gradient surrogate J (clip-higher: PPO clip with ε_low/ε_high, App. A)", () => PolicyLosses.Names, c => c.PolicyLoss, (c, v) => c with { PolicyLoss = v }),
        Choice("loss_agg_mode", "objective", "how token losses are averaged", () => LossAggregation.Names.Keys, c => c.LossAggMode, (c, v) => c with { LossAggMode = v }),

        Choice("kl_estimator", "kl", "per-token KL estimator (docs/findings.md)", () => Estimators.Names, c => c.KlEstimator, (c, v) => c with { KlEstimator = v }),
        Real("kl_beta", "kl", "β, weight of the KL term (0 switches it off)", 0, 1e6, c => c.KlBeta, (c, v) => c with { KlBeta = v }),
        Int("kl_topk", "kl", "k of Top-k / truncated estimators", 0, 1 << 20, c => c.KlTopK, (c, v) => c with { KlTopK = v }),
        Real("is_clip_min", "kl", "s_min, lower clip of the off-policy weight s", 0, double.PositiveInfinity, c => c.IsClipMin, (c, v) => c with { IsClipMin = v }),
        Real("is_clip_max", "kl", "s_max, upper clip of the off-policy weight s (inf = none)", 0, double.PositiveInfinity, c => c.IsClipMax, (c, v) => c with { IsClipMax = v }),

        Real("ema_eta", "anchor", "η of θ_ema ← ηθ_ema + (1−η)θ; 1 = fixed reference, 0 = hard reset", 0, 1, c => c.EmaEta, (c, v) => c with { EmaEta = v }),
        Int("ema_period", "anchor", "T_ema, iterations between anchor updates", 1, 1_000_000, c => c.EmaPeriod, (c, v) => c with { EmaPeriod = v }),
        Choice("anchor_dtype", "anchor", "dtype the EMA anchor is kept in: exact (the policy's, float32) or bfloat16 (half the memory; each EMA update rounds θ_ema to 8 significant bits and the anchor's body runs in bfloat16, its head in float32; docs/benchmarks.md measures the KL it shifts)", () => ["exact", "bfloat16"], c => c.AnchorDtype, (c, v) => c with { AnchorDtype = v }),

        Real("learning_rate", "optimizer", "AdamW learning rate", 0, 1, c => c.LearningRate, (c, v) => c with { LearningRate = v }, minOpen: true),
        Real("weight_decay", "optimizer", "decoupled weight decay", 0, 1, c => c.WeightDecay, (c, v) => c with { WeightDecay = v }),
        Real("adam_beta1", "optimizer", "Adam β₁", 0, 1, c => c.AdamBeta1, (c, v) => c with { AdamBeta1 = v }, maxOpen: true),
        Real("adam_beta2", "optimizer", "Adam β₂", 0, 1, c => c.AdamBeta2, (c, v) => c with { AdamBeta2 = v }, maxOpen: true),
        Real("adam_eps", "optimizer", "Adam ε", 0, 1, c => c.AdamEps, (c, v) => c with { AdamEps = v }, minOpen: true),
        Real("grad_clip", "optimizer", "global gradient-norm clip (0 = off)", 0, 1e6, c => c.GradClip, (c, v) => c with { GradClip = v }),

        Int("eval_every", "eval", "iterations between test-set evaluations (0 = only at the end)", 0, 1_000_000, c => c.EvalEvery, (c, v) => c with { EvalEvery = v }),
        Int("eval_problems", "eval", "test problems evaluated", 1, 100_000, c => c.EvalProblems, (c, v) => c with { EvalProblems = v }),
        Int("eval_samples", "eval", "samples per test problem (n of pass@k)", 1, 1024, c => c.EvalSamples, (c, v) => c with { EvalSamples = v }),
        Int("pass_k", "eval", "k of pass@k (≤ eval_samples)", 1, 1024, c => c.PassK, (c, v) => c with { PassK = v }),
        Int("checkpoint_every", "run", "iterations between checkpoints", 1, 1_000_000, c => c.CheckpointEvery, (c, v) => c with { CheckpointEvery = v }),
        Bool("guard_snapshots", "run", "keep a copy of policy, anchor and AdamW moments from the last good rollout, so an update that leaves non-finite parameters or outputs is rolled back (costs that memory once)", c => c.GuardSnapshots, (c, v) => c with { GuardSnapshots = v }),
        Bool("stability_monitor", "run", "log the Fisher-trace bound αβλ̂_max (eq. 28) every iteration", c => c.StabilityMonitor, (c, v) => c with { StabilityMonitor = v }),
    ];

    /// <summary>Vocabulary size from which fused_head = auto uses the fused head: below it one chunk is the whole vocabulary and there is nothing to save.</summary>
    public const int FusedHeadAutoVocab = 4096;

    /// <summary>Whether the trainer computes token terms with the fused head for <paramref name="vocab"/> and this estimator.</summary>
    public static bool UseFusedHead(TrainConfig c, int vocab, DivergenceEstimator? kl) =>
        kl?.NeedsFullLogits != true && c.FusedHead switch
        {
            "on" => true,
            "off" => false,
            "auto" => vocab >= FusedHeadAutoVocab,
            _ => throw new UserError($"fused_head must be one of auto, on, off, got '{c.FusedHead}'."),
        };

    /// <summary>Parameter count from which activation_checkpointing = auto recomputes layers: the toy policy (≈0.6M) keeps its plain, faster backward.</summary>
    public const long CheckpointingAutoParameters = 50_000_000;

    /// <summary>Whether the trainer's policy uses activation checkpointing at <paramref name="parameters"/> parameters.</summary>
    public static bool UseActivationCheckpointing(TrainConfig c, long parameters) => c.ActivationCheckpointing switch
    {
        "on" => true,
        "off" => false,
        "auto" => parameters >= CheckpointingAutoParameters,
        _ => throw new UserError($"activation_checkpointing must be one of auto, on, off, got '{c.ActivationCheckpointing}'."),
    };

    /// <summary>The anchor's parameter dtype from anchor_dtype; null = the policy's.</summary>
    public static TorchSharp.torch.ScalarType? AnchorScalarType(TrainConfig c) => c.AnchorDtype switch
    {
        "exact" => null,
        "bfloat16" => TorchSharp.torch.ScalarType.BFloat16,
        _ => throw new UserError($"anchor_dtype must be one of exact, bfloat16, got '{c.AnchorDtype}'."),
    };

    public static ConfigKey? Find(string name) => Keys.FirstOrDefault(k => k.Name == name.Replace('-', '_'));

    /// <summary>Checks that hold between keys.</summary>
    public static TrainConfig CrossValidate(TrainConfig c)
    {
        if (c.PassK > c.EvalSamples) throw new UserError($"pass_k must be ≤ eval_samples ({c.EvalSamples}), got {c.PassK}.");
        if (c.IsClipMax < c.IsClipMin) throw new UserError($"is_clip_max must be ≥ is_clip_min ({c.IsClipMin}), got {c.IsClipMax}.");
        if (c.TaskMinDigits > c.TaskMaxDigits) throw new UserError($"task_max_digits must be ≥ task_min_digits ({c.TaskMinDigits}), got {c.TaskMaxDigits}.");
        if (c.HiddenSize % c.NumHeads != 0) throw new UserError($"num_heads must divide hidden_size ({c.HiddenSize}), got {c.NumHeads}.");
        if (c.NumHeads % c.NumKvHeads != 0) throw new UserError($"num_kv_heads must divide num_heads ({c.NumHeads}), got {c.NumKvHeads}.");
        var estimator = Estimators.Get(c.KlEstimator);
        int vocab = c.VocabSize;   // ≥ the task tokenizer's 16 ids by its range, so it is the model's vocabulary
        if (c.KlBeta > 0 && estimator.Index != IndexSource.None && (c.KlTopK < 1 || c.KlTopK > vocab))
            throw new UserError($"kl_topk must be in [1, {vocab}] (the vocabulary) for kl_estimator = {c.KlEstimator}, which sums over a top-k index set; got {c.KlTopK}.");
        int rollouts = c.PromptsPerIteration * c.GroupSize;
        if (c.Minibatches > rollouts) throw new UserError($"minibatches must be ≤ prompts_per_iteration × group_size ({rollouts}), got {c.Minibatches}.");
        return c;
    }
}

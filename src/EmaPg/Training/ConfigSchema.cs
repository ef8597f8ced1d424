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

    /// <summary>The paper's four presets: what `emapg compare` runs by default.</summary>
    public static readonly IReadOnlyList<string> PaperPresets = ["grpo", "ema-anchor", "ema-pg-reverse", "ema-pg-forward"];

    /// <summary>Every preset: the paper's, RPG's headline variants (iterative reference) GSPO/CISPO with the EMA anchor, and the embedded word-problems job.</summary>
    public static readonly IReadOnlyList<string> Presets = [.. PaperPresets, "rpg-fkl", "rpg-rkl", "rpg-ufkl", "rpg-urkl", "gspo", "cispo", "word-problems", "search"];

    /// <summary>A free-text key; <paramref name="check"/> throws a <see cref="UserError"/> for a bad value.</summary>
    private static ConfigKey Text(string name, string section, string help, Func<TrainConfig, string> get, Func<TrainConfig, string, TrainConfig> set, Action<string>? check = null) =>
        new(name, section, help, get, (c, s) =>
        {
            var v = s.Trim();
            if (v.Contains('#')) throw new UserError($"{name} cannot contain '#' (it starts a comment in config files), got '{v}'.");
            check?.Invoke(v);
            return set(c, v);
        });

    /// <summary>A file or folder path, stored absolute so that a resumed run finds it from any working directory; empty = none.</summary>
    private static ConfigKey PathKey(string name, string section, string help, Func<TrainConfig, string> get, Func<TrainConfig, string, TrainConfig> set) =>
        new(name, section, $"{help} (a path; empty = none)", get, (c, s) =>
        {
            var v = s.Trim();
            if (v.Contains('#')) throw new UserError($"{name} cannot contain '#' (it starts a comment in config files), got '{v}'.");
            return set(c, v.Length == 0 ? "" : System.IO.Path.GetFullPath(v));
        });

    /// <summary>Names of <c>task</c>: auto = dataset when <c>data</c> is set, else search-world with env = search, else arithmetic.</summary>
    public static readonly IReadOnlyList<string> TaskNames = ["auto", "arithmetic", "word-problems", "dataset", "search-world"];

    public static readonly IReadOnlyList<ConfigKey> Keys =
    [
        Choice("preset", "run", "named preset the run started from", () => Presets, c => c.Preset, (c, v) => c with { Preset = v }),
        Int("seed", "run", "seed of sampling, initialisation and prompts", 0, int.MaxValue, c => c.Seed, (c, v) => c with { Seed = v }),
        Int("iterations", "run", "RL iterations (Alg. 3 outer loop)", 1, 1_000_000, c => c.Iterations, (c, v) => c with { Iterations = v }),
        Choice("device", "run", "tensor device", () => ["cpu", "cuda"], c => c.Device, (c, v) => c with { Device = v }),
        Int("threads", "run", "intra-op CPU threads, 0 = TorchSharp's default", 0, 256, c => c.Threads, (c, v) => c with { Threads = v }),

        Choice("task", "task", "what to train on: arithmetic (embedded, character tokenizer), word-problems (embedded, math reward, chat template), dataset (data/eval_data files), search-world (the embedded fictional world's questions, env = search); auto = dataset when data is set, else search-world with env = search, else arithmetic", () => TaskNames, c => c.Task, (c, v) => c with { Task = v }),
        PathKey("data", "task", "training split, JSONL or Parquet (verl's RL schema or question/answer rows)", c => c.Data, (c, v) => c with { Data = v }),
        PathKey("eval_data", "task", "test split for pass@k, same formats", c => c.EvalData, (c, v) => c with { EvalData = v }),
        Choice("reward", "task", "reward function (`emapg reward --list`); auto = the task's own (arithmetic: the digits; word-problems and datasets: math)", () => ["auto", .. Rewards.RewardRegistry.All.Select(r => r.Name)], c => c.Reward, (c, v) => c with { Reward = v }),
        Text("reward_command", "task", "command of the external reward (reward = external): reads JSON lines on stdin, writes scores on stdout", c => c.RewardCommand, (c, v) => c with { RewardCommand = v }),
        Real("reward_timeout", "task", "seconds a reward call may take before it scores 0 (counted)", 0, 3600, c => c.RewardTimeout, (c, v) => c with { RewardTimeout = v }, minOpen: true),
        Text("prompt_field", "task", "dataset field (dotted path) holding the prompt; empty = prompt, else question, else messages", c => c.PromptField, (c, v) => c with { PromptField = v }),
        Text("answer_field", "task", "dataset field holding the ground truth(s); empty = reward_model.ground_truth, else answer, answers, golden_answers", c => c.AnswerField, (c, v) => c with { AnswerField = v }),
        Text("solution_field", "task", "dataset field holding a reference response for SFT; empty = solution, else response, else a trailing assistant message", c => c.SolutionField, (c, v) => c with { SolutionField = v }),
        Text("instruction_suffix", "task", "text appended (after a space) to each prompt's last user message; 'deepscaler' = DeepScaleR's \\boxed{} instruction; empty = none", c => c.InstructionSuffix, (c, v) => c with { InstructionSuffix = v }),
        Bool("no_chat_template", "task", "use prompts' text as is instead of the model's chat template", c => c.NoChatTemplate, (c, v) => c with { NoChatTemplate = v }),
        Int("max_prompt_length", "task", "longest prompt in tokens, 0 = no limit", 0, 1 << 20, c => c.MaxPromptLength, (c, v) => c with { MaxPromptLength = v }),
        Choice("over_length", "task", "longer prompts: skip (counted in the run's log) or error", () => ["skip", "error"], c => c.OverLength, (c, v) => c with { OverLength = v }),
        Int("word_problems_min_steps", "task", "fewest arithmetic steps of a generated word problem", 1, 8, c => c.WordProblemsMinSteps, (c, v) => c with { WordProblemsMinSteps = v }),
        Int("word_problems_max_steps", "task", "most arithmetic steps of a generated word problem", 1, 8, c => c.WordProblemsMaxSteps, (c, v) => c with { WordProblemsMaxSteps = v }),
        Choice("word_problems_solution", "task", "reference solutions for the cold start: worked (each step in words) or terse (the steps' equations only, about half the tokens)", () => ["worked", "terse"], c => c.WordProblemsSolution, (c, v) => c with { WordProblemsSolution = v }),
        Int("word_problems_max_operand", "task", "largest starting quantity and step operand of a word problem", 2, 1000, c => c.WordProblemsMaxOperand, (c, v) => c with { WordProblemsMaxOperand = v }),

        PathKey("model", "model", "Hugging Face model folder to start from (no cold start); empty = build one from the keys below and cold-start it", c => c.Model, (c, v) => c with { Model = v }),
        Choice("model_arch", "model", "architecture of a model built from the keys (model empty)", () => Model.Architectures.List.Select(a => a.Name), c => c.ModelArch, (c, v) => c with { ModelArch = v }),
        Text("tokenizer", "model", "tokenizer of a built model: auto (arithmetic: its characters; otherwise the bundled qwen3), a bundled name (qwen3, qwen2.5) or a folder with tokenizer.json", c => c.Tokenizer, (c, v) => c with { Tokenizer = v.Length == 0 ? "auto" : v }),
        Choice("save_hf", "run", "when policy/ and anchor/ are written as Hugging Face folders: checkpoint (with every checkpoint and at the end), end, never", () => ["checkpoint", "end", "never"], c => c.SaveHf, (c, v) => c with { SaveHf = v }),

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
        Bool("sft_cosine_decay", "cold start", "after the 20-step warm-up, decay the cold-start rate along a half cosine to 0.1 × its peak (false: constant)", c => c.SftCosineDecay, (c, v) => c with { SftCosineDecay = v }),

        Choice("env", "search", "how a rollout is made: single-turn (one sampled response) or search (Search-R1's multi-turn episodes with a retriever; reward = exact match of the last <answer>)", () => ["single-turn", "search"], c => c.Env, (c, v) => c with { Env = v }),
        Text("retriever", "search", "env = search: empty = the in-process BM25 index of the embedded world's corpus, built in the cache; or the URL of a server speaking Search-R1's POST /retrieve protocol, such as `emapg search serve`", c => c.Retriever, (c, v) => c with { Retriever = v }, v =>
        {
            if (v.Length > 0 && !(Uri.TryCreate(v, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"))
                throw new UserError($"retriever must be empty (the in-process index) or an http(s) URL, got '{v}'.");
        }),
        Int("max_turns", "search", "turns that may search; a final turn follows whose search is not executed (0 = no retrieval)", 0, 64, c => c.MaxTurns, (c, v) => c with { MaxTurns = v }),
        Int("search_topk", "search", "passages per search", 1, 100, c => c.SearchTopK, (c, v) => c with { SearchTopK = v }),
        Int("max_turn_tokens", "search", "new tokens per model turn (Search-R1's max_response_length)", 1, 1 << 20, c => c.MaxTurnTokens, (c, v) => c with { MaxTurnTokens = v }),
        Int("max_obs_tokens", "search", "tokens of one observation, <information> tags included (max_obs_length)", 1, 1 << 20, c => c.MaxObsTokens, (c, v) => c with { MaxObsTokens = v }),
        Int("max_episode_tokens", "search", "all tokens after the prompt, the model's and the observations'; an episode reaching it ends without an answer", 1, 1 << 22, c => c.MaxEpisodeTokens, (c, v) => c with { MaxEpisodeTokens = v }),
        Choice("search_prompt", "search", "prompt of a question: search-r1 (Search-R1's base template) or short ('Question: …?' and a newline, for the small embedded policy; its demonstrations are then the actions alone, without <think>)", () => ["search-r1", "short"], c => c.SearchPrompt, (c, v) => c with { SearchPrompt = v }),

        Int("prompts_per_iteration", "rollout", "prompts sampled per iteration", 1, 4096, c => c.PromptsPerIteration, (c, v) => c with { PromptsPerIteration = v }),
        Int("group_size", "rollout", "responses per prompt N (group advantages need N ≥ 2)", 2, 1024, c => c.GroupSize, (c, v) => c with { GroupSize = v }),
        Real("temperature", "rollout", "sampling temperature", 0, 10, c => c.Temperature, (c, v) => c with { Temperature = v }, minOpen: true),
        Int("max_new_tokens", "rollout", "response length limit", 1, 4096, c => c.MaxNewTokens, (c, v) => c with { MaxNewTokens = v }),
        Text("rollout_servers", "rollout", "comma-separated base URLs of inference servers that sample the rollouts (vLLM, SGLang, emapg serve), e.g. http://127.0.0.1:8000,http://127.0.0.1:8001; empty = in-process", c => c.RolloutServers, (c, v) => c with { RolloutServers = v },
            v => { if (v.Length > 0) Rollout.HttpRolloutOptions.ParseServers(v); }),
        PathKey("rollout_weights_dir", "rollout", "folder the rollout servers can read, where the policy is written before each rollout; empty = rollout-weights/ in the run directory", c => c.RolloutWeightsDir, (c, v) => c with { RolloutWeightsDir = v }),
        Choice("rollout_api", "rollout", "request format of the rollout servers: openai (/v1/completions with token ids: vLLM, emapg serve) or sglang (/generate)", () => ["openai", "sglang"], c => c.RolloutApi, (c, v) => c with { RolloutApi = v }),
        Choice("rollout_reload", "rollout", "how the servers load new weights: update_weights_from_disk (SGLang, emapg serve: a new folder per version) or collective_rpc (vLLM's reload_weights: rollout_weights_dir must be the folder the server was started from)", () => ["update_weights_from_disk", "collective_rpc"], c => c.RolloutReload, (c, v) => c with { RolloutReload = v }),
        Int("rollout_concurrency", "rollout", "requests in flight per rollout server", 1, 1024, c => c.RolloutConcurrency, (c, v) => c with { RolloutConcurrency = v }),
        Real("rollout_timeout", "rollout", "seconds after which a rollout request or reload counts as its server's failure", 0, 86400, c => c.RolloutTimeout, (c, v) => c with { RolloutTimeout = v }, minOpen: true),

        Int("inner_updates", "objective", "Λ, passes over the rollout batch per iteration (Alg. 3 line 13)", 1, 64, c => c.InnerUpdates, (c, v) => c with { InnerUpdates = v }),
        Int("minibatches", "objective", "optimiser steps per pass (the rollout batch is split evenly)", 1, 4096, c => c.Minibatches, (c, v) => c with { Minibatches = v }),
        Real("clip_eps_low", "objective", "ε_low of the policy loss's clip (clip-higher, GSPO's sequence ratio, CISPO's weight, RPG's dual clip)", 0, 1, c => c.ClipEpsLow, (c, v) => c with { ClipEpsLow = v }),
        Real("clip_eps_high", "objective", "ε_high of the policy loss's clip", 0, 10, c => c.ClipEpsHigh, (c, v) => c with { ClipEpsHigh = v }),
        Real("dual_clip_c", "objective", "c of RPG's dual clip: a token with A < 0 and π_θ/π_old > c gets no gradient (rpg-* losses only)", 1, double.PositiveInfinity, c => c.DualClipC, (c, v) => c with { DualClipC = v }, minOpen: true),
        Choice("advantage_norm", "objective", "group: (R − mean)/std per prompt (App. A); global: z-score over the batch (App. B); none: R − mean", () => Advantages.Names, c => c.AdvantageNorm, (c, v) => c with { AdvantageNorm = v }),
        Choice("fused_head", "objective", $"token log-probs, entropy and Top-k terms from hidden states with the vocabulary-chunked fused head, never an N×|V| tensor (estimators that need full logits always use them); auto = on from |V| ≥ {FusedHeadAutoVocab}", () => ["auto", "on", "off"], c => c.FusedHead, (c, v) => c with { FusedHead = v }),
        Choice("activation_checkpointing", "objective", $"per decoder layer, keep only each layer's input and recompute its forward in the backward pass (one more forward per update, a fraction of the activation memory; gradients unchanged); auto = on from {CheckpointingAutoParameters / 1_000_000}M parameters", () => ["auto", "on", "off"], c => c.ActivationCheckpointing, (c, v) => c with { ActivationCheckpointing = v }),
        Choice("policy_loss", "objective", "policy-gradient surrogate J (clip-higher: PPO clip, App. A; gspo, cispo; rpg-*: RPG's objectives and grpo-k3*: GRPO's k3 term, which carry their own β·KL with kl_beta against the anchor, so kl_estimator is then only logged)", () => PolicyLosses.Names, c => c.PolicyLoss, (c, v) => c with { PolicyLoss = v }),
        Choice("loss_agg_mode", "objective", "how token losses are averaged", () => LossAggregation.Names.Keys, c => c.LossAggMode, (c, v) => c with { LossAggMode = v }),

        Choice("kl_estimator", "kl", "per-token KL estimator (docs/findings.md)", () => Estimators.Names, c => c.KlEstimator, (c, v) => c with { KlEstimator = v }),
        Real("kl_beta", "kl", "β, weight of the KL term (0 switches it off)", 0, 1e6, c => c.KlBeta, (c, v) => c with { KlBeta = v }),
        Int("kl_topk", "kl", "k of Top-k / truncated estimators", 0, 1 << 20, c => c.KlTopK, (c, v) => c with { KlTopK = v }),
        Real("is_clip_min", "kl", "s_min, lower clip of the off-policy weight s", 0, double.PositiveInfinity, c => c.IsClipMin, (c, v) => c with { IsClipMin = v }),
        Choice("kl_agg_mode", "kl", "how KL̂ is averaged over tokens: same = as loss_agg_mode (the presets: J and KL̂ share one token mean, so β is per token); seq-mean-token-sum = App. A's Σ over a response's tokens, mean over responses (β per response: about the response length times stronger)",
            () => ["same", .. LossAggregation.Names.Keys], c => c.KlAggMode, (c, v) => c with { KlAggMode = v }),
        Real("kl_in_reward_coef", "kl", "β of the sequence-level KL in the reward, R − β·Σ_t log(π_old/π_ref) before advantages (eqs. 10–12, verl's use_kl_in_reward; 0 = off); adds to, does not replace, kl_beta's loss term", 0, 1e6, c => c.KlInRewardCoef, (c, v) => c with { KlInRewardCoef = v }),
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

    /// <summary>The task a config trains on, with auto resolved.</summary>
    public static string ResolvedTask(TrainConfig c) => c.Task == "auto" ? (c.Data.Length > 0 ? "dataset" : c.Env == "search" ? "search-world" : "arithmetic") : c.Task;

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
        if (c.WordProblemsMinSteps > c.WordProblemsMaxSteps) throw new UserError($"word_problems_max_steps must be ≥ word_problems_min_steps ({c.WordProblemsMinSteps}), got {c.WordProblemsMaxSteps}.");
        var task = ResolvedTask(c);
        if (task != "dataset" && (c.Data.Length > 0 || c.EvalData.Length > 0))
            throw new UserError($"data and eval_data are read only by task = dataset (or auto); task is {c.Task}.");
        if (task == "dataset" && (c.Data.Length == 0 || c.EvalData.Length == 0))
            throw new UserError("task = dataset needs both data (the training split) and eval_data (the test split that pass@k is measured on).");
        if (task == "arithmetic" && c.Model.Length > 0)
            throw new UserError("task = arithmetic uses its own character tokenizer, so it cannot start from a Hugging Face model (model); use task = dataset or word-problems.");
        if (task == "arithmetic" && c.Tokenizer != "auto")
            throw new UserError($"task = arithmetic uses its own character tokenizer; tokenizer must be auto, got '{c.Tokenizer}'.");
        if (task == "arithmetic" && c.Reward is not ("auto" or "arithmetic"))
            throw new UserError($"task = arithmetic scores responses by their tokens; reward must be auto, got '{c.Reward}'.");
        if (c.Env == "search" && task is not ("dataset" or "search-world"))
            throw new UserError($"env = search answers questions: task must be auto, dataset or search-world, got '{c.Task}'.");
        if (task == "search-world" && c.Env != "search")
            throw new UserError("task = search-world needs env = search (its questions are answered with the search engine).");
        if (task == "search-world" && (c.Model.Length > 0 || c.Tokenizer != "auto"))
            throw new UserError("task = search-world uses its own character tokenizer over the world's alphabet; model and tokenizer must be unset (use task = dataset with your data for a Hugging Face model).");
        if (c.Env == "search" && c.Reward is not ("auto" or "exact-match"))
            throw new UserError($"env = search rewards exact match of the last <answer>; reward must be auto or exact-match, got '{c.Reward}'.");
        if (c.Env != "search" && c.Retriever.Length > 0)
            throw new UserError("retriever is used only by env = search.");
        if (c.Model.Length > 0 && c.Tokenizer != "auto")
            throw new UserError($"a model folder brings its own tokenizer; tokenizer must be auto with model = {c.Model}, got '{c.Tokenizer}'.");
        if (c.Reward == "external" && c.RewardCommand.Length == 0)
            throw new UserError("reward = external needs reward_command, the command to run.");
        int rollouts = c.PromptsPerIteration * c.GroupSize;
        if (c.Minibatches > rollouts) throw new UserError($"minibatches must be ≤ prompts_per_iteration × group_size ({rollouts}), got {c.Minibatches}.");
        return c;
    }
}

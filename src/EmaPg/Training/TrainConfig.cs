namespace EmaPg.Training;

/// <summary>
/// Every knob of a training run. Defaults are the project's default job; presets (configs/*.conf) and
/// command-line options override them key by key (see <see cref="ConfigSchema"/> for names, ranges and docs).
/// </summary>
public sealed record TrainConfig
{
    // Run
    public string Preset { get; init; } = "ema-pg-reverse";
    public int Seed { get; init; } = 0;
    public int Iterations { get; init; } = 600;
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; } = 0;

    // Task and data (DatasetTask / the embedded generators)
    public string Task { get; init; } = "auto";
    public string Data { get; init; } = "";
    public string EvalData { get; init; } = "";
    public string Reward { get; init; } = "auto";
    public string RewardCommand { get; init; } = "";
    public double RewardTimeout { get; init; } = 10;
    public string PromptField { get; init; } = "";
    public string AnswerField { get; init; } = "";
    public string SolutionField { get; init; } = "";
    public string InstructionSuffix { get; init; } = "";
    public bool NoChatTemplate { get; init; }
    public int MaxPromptLength { get; init; }
    public string OverLength { get; init; } = "skip";
    public int WordProblemsMinSteps { get; init; } = 1;
    public int WordProblemsMaxSteps { get; init; } = 3;
    public int WordProblemsMaxOperand { get; init; } = 20;
    public string WordProblemsSolution { get; init; } = "worked";

    // The search environment (Search-R1's multi-turn rollouts)
    public string Env { get; init; } = "single-turn";
    public string Retriever { get; init; } = "";
    public int MaxTurns { get; init; } = 2;
    public int SearchTopK { get; init; } = 3;
    public int MaxTurnTokens { get; init; } = 500;
    public int MaxObsTokens { get; init; } = 500;
    public int MaxEpisodeTokens { get; init; } = 2048;
    public string SearchPrompt { get; init; } = "search-r1";

    // Policy model: an HF folder, or one built from the keys below and cold-started
    public string Model { get; init; } = "";
    public string ModelArch { get; init; } = "qwen2";
    public string Tokenizer { get; init; } = "auto";
    public string SaveHf { get; init; } = "checkpoint";

    // Task (arithmetic), policy model and supervised cold start
    public int TaskMinDigits { get; init; } = 1;
    public int TaskMaxDigits { get; init; } = 2;
    public string TaskOperators { get; init; } = "+-";
    public int VocabSize { get; init; } = 64;
    public int HiddenSize { get; init; } = 128;
    public int IntermediateSize { get; init; } = 384;
    public int NumLayers { get; init; } = 3;
    public int NumHeads { get; init; } = 4;
    public int NumKvHeads { get; init; } = 2;
    public int SftSteps { get; init; } = 800;
    public int SftBatch { get; init; } = 64;
    public double SftLearningRate { get; init; } = 1e-3;
    public bool SftCosineDecay { get; init; }

    // Rollout (Alg. 3 lines 3–5)
    public int PromptsPerIteration { get; init; } = 64;
    public int GroupSize { get; init; } = 8;
    public double Temperature { get; init; } = 1.0;
    public int MaxNewTokens { get; init; } = 8;
    public string RolloutServers { get; init; } = "";
    public string RolloutWeightsDir { get; init; } = "";
    public string RolloutApi { get; init; } = "openai";
    public string RolloutReload { get; init; } = "update_weights_from_disk";
    public int RolloutConcurrency { get; init; } = 4;
    public double RolloutTimeout { get; init; } = 600;

    // Policy-gradient objective (App. A)
    public int InnerUpdates { get; init; } = 1;
    public int Minibatches { get; init; } = 1;
    public double ClipEpsLow { get; init; } = 0.2;
    public double ClipEpsHigh { get; init; } = 0.28;
    public double DualClipC { get; init; } = 10.0;
    public string AdvantageNorm { get; init; } = "group";
    public string PolicyLoss { get; init; } = "clip-higher";
    public string FusedHead { get; init; } = "auto";
    public string ActivationCheckpointing { get; init; } = "auto";
    public string LossAggMode { get; init; } = "token-mean";

    // KL regulariser (§5, Alg. 1–2)
    public string KlEstimator { get; init; } = "topk-reverse";
    public double KlBeta { get; init; } = 0.001;
    public int KlTopK { get; init; } = 32;
    public double IsClipMin { get; init; } = 0.0;
    public double IsClipMax { get; init; } = 10.0;
    public string KlAggMode { get; init; } = "same";
    public double KlInRewardCoef { get; init; } = 0.0;

    // EMA anchor (eq. 2)
    public double EmaEta { get; init; } = 0.9;
    public int EmaPeriod { get; init; } = 10;
    public string AnchorDtype { get; init; } = "exact";

    // Optimiser (AdamW, decoupled weight decay)
    public double LearningRate { get; init; } = 3e-4;
    public double WeightDecay { get; init; } = 0.0;
    public double AdamBeta1 { get; init; } = 0.9;
    public double AdamBeta2 { get; init; } = 0.999;
    public double AdamEps { get; init; } = 1e-8;
    public double GradClip { get; init; } = 1.0;

    // Evaluation and bookkeeping
    public int EvalEvery { get; init; } = 50;
    public int EvalProblems { get; init; } = 512;
    public int EvalSamples { get; init; } = 4;
    public int PassK { get; init; } = 4;
    public int CheckpointEvery { get; init; } = 10;
    public bool StabilityMonitor { get; init; } = true;
    public bool GuardSnapshots { get; init; } = true;
}

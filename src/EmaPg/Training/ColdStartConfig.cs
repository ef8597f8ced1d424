using System.Text.Json;
using System.Text.Json.Serialization;
using EmaPg.Common;

namespace EmaPg.Training;

/// <summary>
/// Supervised cold start settings. The defaults stop early on purpose: with 1–2-digit arithmetic the loss
/// falls steeply between ~600 and ~1500 steps (3e-3 is too high a rate: the loss stalls near 0.7), and
/// 800 steps leave a base policy right on ~30% of the test split (greedy decoding is no better), which
/// leaves RL both room and reward signal. 3000 steps reach ~88%.
/// </summary>
public sealed record ColdStartConfig
{
    public int Steps { get; init; } = 800;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Linear warm-up length; the rate is constant afterwards unless <see cref="CosineDecay"/>.</summary>
    public int WarmupSteps { get; init; } = 20;
    /// <summary>
    /// After the warm-up, decay the rate along a half cosine to <see cref="DecayFloor"/> of its peak at the last step. Off by
    /// default; left out of the JSON (hence of cache keys) when off, so constant-rate cold starts keep their cache entries.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool CosineDecay { get; init; }
    public const double DecayFloor = 0.1;
    public double WeightDecay { get; init; } = 0.0;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.98;
    /// <summary>Global gradient-norm clip; 0 = off.</summary>
    public double GradClip { get; init; } = 1.0;
    /// <summary>Seeds the model init and the training problem stream.</summary>
    public int Seed { get; init; } = 1;

    public ColdStartConfig Validate()
    {
        Check.Range("sft steps", Steps, 0, 1_000_000);
        Check.Range("sft batch size", BatchSize, 1, 1 << 16);
        Check.Range("sft learning rate", LearningRate, 0.0, 10.0, minInclusive: false);
        Check.Range("sft warmup steps", WarmupSteps, 0, 1_000_000);
        Check.Range("sft weight decay", WeightDecay, 0.0, 10.0);
        Check.Range("sft beta1", Beta1, 0.0, 1.0, maxInclusive: false);
        Check.Range("sft beta2", Beta2, 0.0, 1.0, maxInclusive: false);
        Check.Range("sft grad clip", GradClip, 0.0, double.PositiveInfinity);
        return this;
    }

    /// <summary>The rate at 0-based <paramref name="step"/>: linear warm-up, then constant or the cosine decay.</summary>
    public double RateAt(int step)
    {
        if (WarmupSteps > 0 && step < WarmupSteps) return LearningRate * ((step + 1.0) / WarmupSteps);
        if (!CosineDecay || Steps <= WarmupSteps + 1) return LearningRate;
        double progress = (step - WarmupSteps) / (double)(Steps - WarmupSteps - 1);
        return LearningRate * (DecayFloor + (1 - DecayFloor) * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }

    public string ToJson() => JsonSerializer.Serialize(this);
}

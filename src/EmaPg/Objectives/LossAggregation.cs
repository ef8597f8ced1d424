using EmaPg.Common;
using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>How per-token losses [B, L] become one scalar, with a mask for tokens that carry no loss (verl's loss_agg_mode).</summary>
public enum LossAggregationMode
{
    /// <summary>Σ loss·mask / Σ mask: every token weighs the same (DAPO).</summary>
    TokenMean,
    /// <summary>mean over sequences of (Σ_t loss·mask / Σ_t mask): every sequence weighs the same (original GRPO).</summary>
    SeqMeanTokenMean,
    /// <summary>mean over sequences of Σ_t loss·mask: long sequences weigh more (Dr. GRPO style).</summary>
    SeqMeanTokenSum,
}

public static class LossAggregation
{
    public static readonly IReadOnlyDictionary<string, LossAggregationMode> Names = new Dictionary<string, LossAggregationMode>
    {
        ["token-mean"] = LossAggregationMode.TokenMean,
        ["seq-mean-token-mean"] = LossAggregationMode.SeqMeanTokenMean,
        ["seq-mean-token-sum"] = LossAggregationMode.SeqMeanTokenSum,
    };

    public static LossAggregationMode Parse(string name) =>
        Names.TryGetValue(name, out var m) ? m : throw new UserError($"loss_agg_mode must be one of {string.Join(", ", Names.Keys)}, got '{name}'.");

    public static string Name(LossAggregationMode mode) => Names.First(kv => kv.Value == mode).Key;

    public static Tensor Aggregate(Tensor perToken, Tensor mask, LossAggregationMode mode)
    {
        var m = mask.to_type(perToken.dtype);
        var masked = perToken * m;
        return mode switch
        {
            LossAggregationMode.TokenMean => masked.sum() / m.sum().clamp_min(1.0),
            LossAggregationMode.SeqMeanTokenMean => (masked.sum(1) / m.sum(1).clamp_min(1.0)).mean(),
            LossAggregationMode.SeqMeanTokenSum => masked.sum(1).mean(),
            _ => throw new ArgumentOutOfRangeException(nameof(mode)),
        };
    }
}

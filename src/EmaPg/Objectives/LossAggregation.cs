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

    /// <summary>
    /// Per-token weights w [B, L] with <see cref="Aggregate"/>(x) = Σ x·w: what each token's loss counts in the mini-batch's,
    /// so that a loss computed in row chunks (<see cref="KlRegularizedLoss.ComputeRows"/>) adds up to the aggregate.
    /// </summary>
    public static Tensor Weights(Tensor mask, LossAggregationMode mode, ScalarType dtype)
    {
        var m = mask.to_type(dtype);
        long b = Math.Max(1, m.shape[0]);
        return mode switch
        {
            LossAggregationMode.TokenMean => m / m.sum().clamp_min(1.0),
            LossAggregationMode.SeqMeanTokenMean => m / m.sum(1, keepdim: true).clamp_min(1.0) / b,
            LossAggregationMode.SeqMeanTokenSum => m / b,
            _ => throw new ArgumentOutOfRangeException(nameof(mode)),
        };
    }

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

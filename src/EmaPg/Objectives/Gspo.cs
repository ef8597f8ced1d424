using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>
/// GSPO (Zheng et al. 2025), token form: the importance ratio of a whole response, length-normalised,
/// s_i = exp((1/|y_i|) Σ_t log(π_θ(y_i,t)/π_old(y_i,t))), clipped per sequence, and per token
/// s_i,t = sg(s_i)·π_θ(y_i,t)/sg(π_θ(y_i,t)), whose value is s_i and whose gradient is s_i·∇log π_θ(y_i,t).
/// With seq-mean-token-mean aggregation the gradient is A_i·∇s_i, GSPO's sequence objective. The PPO min(s·A, clip(s)·A)
/// is written as the binary mask M_i it amounts to (as <see cref="GrpoClipHigher"/> does per token).
/// </summary>
public static class Gspo
{
    /// <summary>GSPO's published clip range (ε_low = 3e-4, ε_high = 4e-4): sequence ratios stay much closer to 1 than token ratios.</summary>
    public const double PaperEpsLow = 3e-4, PaperEpsHigh = 4e-4;

    /// <summary>Per-token objective M_i·A·s_i,t [B, L] and the per-sequence clip mask M_i broadcast to [B, L].</summary>
    public static (Tensor Objective, Tensor Mask) Compute(PolicyLossInputs x, PolicyLossOptions o)
    {
        var m = x.Mask.to_type(x.Logp.dtype);
        var logRatio = (x.Logp.detach() - x.OldLogp.detach()) * m;
        var s = (logRatio.sum(1, keepdim: true) / m.sum(1, keepdim: true).clamp_min(1.0)).exp();   // [B, 1], data
        var sTok = s * (x.Logp - x.Logp.detach()).exp();
        var a = x.TokenAdvantages;
        var clipped = (a > 0).logical_and(s > 1.0 + o.EpsHigh).logical_or((a < 0).logical_and(s < 1.0 - o.EpsLow));
        var keep = clipped.logical_not().to_type(x.Logp.dtype).expand_as(x.Logp);
        return (keep * a * sTok, keep);
    }
}

using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>
/// PPO clip-higher in its binary-mask form (App. A, DAPO's ε_low = 0.2, ε_high = 0.28): per token,
/// M = 0 if A > 0 and s > 1 + ε_high, M = 0 if A < 0 and s < 1 − ε_low, else 1, with s = π_θ/π_θold.
/// The surrogate s·M·A·log π_θ of App. A and M·A·(π_θ/π_θold) used here have the same gradient,
/// M·A·s·∇log π_θ; the latter's value is the familiar PPO objective, so it is what we report.
/// </summary>
public static class GrpoClipHigher
{
    public const double DefaultEpsLow = 0.2, DefaultEpsHigh = 0.28;

    /// <summary>Per-token objective J_n (to be maximised) and the clip mask M, both [B, L].</summary>
    /// <param name="logp">log π_θ of the response tokens [B, L], differentiable.</param>
    /// <param name="oldLogp">log π_θold of the same tokens [B, L].</param>
    /// <param name="advantages">one advantage per sequence [B] (or per token [B, L]).</param>
    public static (Tensor Objective, Tensor Mask) Compute(Tensor logp, Tensor oldLogp, Tensor advantages, double epsLow = DefaultEpsLow, double epsHigh = DefaultEpsHigh)
    {
        var a = advantages.dim() == 1 ? advantages.unsqueeze(1) : advantages;
        var ratio = (logp - oldLogp.detach()).exp();
        var s = ratio.detach();
        var clipped = (a > 0).logical_and(s > 1.0 + epsHigh).logical_or((a < 0).logical_and(s < 1.0 - epsLow));
        var m = clipped.logical_not().to_type(logp.dtype);
        return (m * a * ratio, m);
    }
}

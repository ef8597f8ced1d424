using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>
/// CISPO (MiniMax-M1): J = sg(ŵ)·A·log π_θ with ŵ = clip(π_θ/π_old, 1 − ε_low, 1 + ε_high). Unlike the PPO clip no token
/// loses its gradient; the clip only bounds its weight. Written as sg(ŵ)·A·π_θ/sg(π_θ), which has that gradient and the
/// value ŵ·A (the clipped importance-weighted advantage) rather than the meaningless ŵ·A·log π_θ.
/// </summary>
public static class Cispo
{
    /// <summary>Per-token objective [B, L] and the mask of tokens whose weight was not clipped [B, L].</summary>
    public static (Tensor Objective, Tensor Mask) Compute(PolicyLossInputs x, PolicyLossOptions o)
    {
        var w = (x.Logp.detach() - x.OldLogp.detach()).exp();
        var wClipped = w.clamp(1.0 - o.EpsLow, 1.0 + o.EpsHigh);
        var kept = w.ge(1.0 - o.EpsLow).logical_and(w.le(1.0 + o.EpsHigh)).to_type(x.Logp.dtype);
        return (wClipped * x.TokenAdvantages * (x.Logp - x.Logp.detach()).exp(), kept);
    }
}

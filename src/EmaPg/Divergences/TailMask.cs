using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>The masked, importance-weighted tail of the Top-k estimators (eq. 25): s · 1(p∉q) · K̂.</summary>
public static class TailMask
{
    public static Tensor Tail(Tensor sampledInQ, Tensor s, Tensor sampledEstimate) =>
        where(sampledInQ, zeros_like(sampledEstimate), s * sampledEstimate);
}

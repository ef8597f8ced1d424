using EmaPg.Divergences;
using static TorchSharp.torch;

namespace EmaPg.Tests.Heads;

/// <summary>
/// A synthetic rollout for the head tests: N tokens sampled from a sampling head (W + noise), an anchor head (W + other
/// noise), q as the top-k of the named policy, old log-probs spread around the sampling ones so that clipping acts.
/// </summary>
internal sealed record HeadRollout(Tensor Hidden, Tensor Weight, Tensor Sampled, Tensor SamplingLogp, Tensor AnchorLogp, Tensor? Q, Tensor? AnchorLogpQ,
    Tensor Advantages, Tensor OldLogp)
{
    /// <param name="advantages">how many advantages to draw: N (one per token) or the number of sequences.</param>
    public static HeadRollout Make(int n, int h, int v, IndexSource src, int k, double temp, int seed, int advantages)
    {
        var g = new Generator((ulong)seed);
        var hidden = randn(n, h, dtype: float64, generator: g);
        var w = randn(v, h, dtype: float64, generator: g) * 1.2;
        var wSampling = w + randn(v, h, dtype: float64, generator: g) * 0.3;
        var wAnchor = w + randn(v, h, dtype: float64, generator: g) * 0.4;
        using var _ = no_grad();
        var samplingLogits = hidden.mm(wSampling.t()) / temp;
        var sampled = multinomial(samplingLogits.softmax(-1), 1, generator: g).squeeze(1);
        var samplingLogp = samplingLogits.log_softmax(-1).gather(1, sampled.unsqueeze(1)).squeeze(1);
        var anchorLogits = hidden.mm(wAnchor.t()) / temp;
        Tensor? q = src switch
        {
            IndexSource.SamplingPolicy => samplingLogits.topk(k, dim: -1).indexes,
            IndexSource.Anchor => anchorLogits.topk(k, dim: -1).indexes,
            IndexSource.None => null,
            _ => throw new ArgumentOutOfRangeException(nameof(src)),
        };
        var anchorLogp = anchorLogits.log_softmax(-1);
        // Advantages of both signs and old log-probs spread around the policy's so that clip-higher masks some tokens.
        var adv = randn(advantages, dtype: float64, generator: g);
        var oldLogp = samplingLogp + randn(n, dtype: float64, generator: g) * 0.5;
        return new HeadRollout(hidden, w, sampled, samplingLogp, anchorLogp.gather(1, sampled.unsqueeze(1)).squeeze(1), q,
            q is null ? null : anchorLogp.gather(1, q), adv, oldLogp);
    }

    /// <summary>‖got − want‖ ≤ tol·‖want‖ (or below 1e-14 absolute), with the relative error in the message.</summary>
    public static void Close(Tensor want, Tensor got, string what, double tol = 1e-9)
    {
        Assert.Equal(want.shape, got.shape);
        using var _ = NewDisposeScope();
        double norm = want.detach().norm().item<double>();
        double diff = (got.detach() - want.detach()).norm().item<double>();
        Assert.True(diff <= tol * norm || diff < 1e-14, $"{what}: relative error {diff / Math.Max(norm, 1e-300):E2} (|want| = {norm:E2})");
    }
}

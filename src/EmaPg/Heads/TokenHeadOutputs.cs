using static TorchSharp.torch;

namespace EmaPg.Heads;

/// <summary>
/// What a token head returns per token: everything the policy-gradient loss, the entropy and every estimator
/// that does not need full logits consume, O(k) numbers per token. Shapes: N tokens, k indices of q, k' top-k.
/// <see cref="LogpTarget"/>, <see cref="LogZ"/>, <see cref="Entropy"/>, <see cref="LogpQ"/> and
/// <see cref="TopKLogp"/> carry gradient to the hidden states and the head weight when those require it;
/// <see cref="TopKIndices"/> is data. The distribution is softmax(h·Wᵀ / T) over the whole vocabulary.
/// </summary>
public sealed class TokenHeadOutputs : IDisposable
{
    /// <summary>log π(target) at each token's target (sampled) index, [N].</summary>
    public required Tensor LogpTarget { get; init; }
    /// <summary>The log-partition log Σ_j exp(z_j), z = h·Wᵀ / T, [N].</summary>
    public required Tensor LogZ { get; init; }
    /// <summary>The entropy −Σ_j π_j log π_j, [N].</summary>
    public required Tensor Entropy { get; init; }
    /// <summary>log π at the requested index set q, [N, k]; null when no q was given.</summary>
    public Tensor? LogpQ { get; init; }
    /// <summary>This distribution's top-k' indices, [N, k'] int64, largest first; null when k' = 0.</summary>
    public Tensor? TopKIndices { get; init; }
    /// <summary>log π at <see cref="TopKIndices"/>, [N, k']; null when k' = 0.</summary>
    public Tensor? TopKLogp { get; init; }

    /// <summary>Empty outputs of the fused function that were not asked for; kept (and moved, and disposed) with the rest,
    /// because autograd's backward of the function reads every output it returned.</summary>
    internal Tensor[] Unrequested { get; init; } = [];

    public long Count => LogpTarget.shape[0];

    internal Tensor[] All => new[] { LogpTarget, LogZ, Entropy, LogpQ, TopKIndices, TopKLogp }.OfType<Tensor>().Concat(Unrequested).ToArray();

    public TokenHeadOutputs MoveToOuterDisposeScope()
    {
        foreach (var t in All) t.MoveToOuterDisposeScope();
        return this;
    }

    public void Dispose()
    {
        foreach (var t in All) t.Dispose();
    }
}

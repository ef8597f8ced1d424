using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Training;

/// <summary>
/// A copy of a fixed set of tensors (policy, anchor, optimiser moments) in preallocated buffers, so that an update
/// that left non-finite values can be undone exactly. Taking and restoring are in-place copies: no allocation per
/// iteration, one extra copy of the state in memory.
/// </summary>
internal sealed class StateSnapshot : IDisposable
{
    private readonly List<(Tensor Live, Tensor Copy)> _pairs;
    private long _optimizerSteps;

    public bool IsValid { get; private set; }

    public StateSnapshot(IEnumerable<Tensor> live)
    {
        using var _ = no_grad();
        _pairs = live.Select(t => (t, empty_like(t).DetachFromDisposeScope())).ToList();
    }

    public void Take(long optimizerSteps)
    {
        using var _ = no_grad();
        foreach (var (live, copy) in _pairs) copy.copy_(live);
        _optimizerSteps = optimizerSteps;
        IsValid = true;
    }

    /// <summary>Writes the snapshot back; returns the optimiser step count it was taken at.</summary>
    public long Restore()
    {
        if (!IsValid) throw new InvalidOperationException("no snapshot to restore");
        using var _ = no_grad();
        foreach (var (live, copy) in _pairs) live.copy_(copy);
        return _optimizerSteps;
    }

    public void Invalidate() => IsValid = false;

    public void Dispose()
    {
        foreach (var (_, copy) in _pairs) copy.Dispose();
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>
/// Preallocated key/value cache for incremental decoding, one [B, kvHeads, capacity, headDim] buffer
/// per layer for keys and for values. Preallocating (instead of torch.cat per step) keeps decoding
/// free of O(T²) copies and of per-step allocations. Inference only: writing into a shared buffer
/// would break autograd's version tracking, so appending with gradients enabled is refused.
/// Create one with <see cref="DecoderLM.CreateCache"/>; dispose it when generation ends.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;
    private bool _disposed;

    internal KvCache(int layers, long batch, int kvHeads, int capacity, int headDim, ScalarType dtype, Device device)
    {
        Batch = batch;
        Capacity = capacity;
        _keys = new Tensor[layers];
        _values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            // Detached: the cache outlives whatever dispose scope the caller happens to be in.
            _keys[i] = zeros([batch, kvHeads, capacity, headDim], dtype: dtype, device: device).DetachFromDisposeScope();
            _values[i] = zeros([batch, kvHeads, capacity, headDim], dtype: dtype, device: device).DetachFromDisposeScope();
        }
    }

    public long Batch { get; }
    public int Capacity { get; }

    /// <summary>Number of positions already stored (the "past" length of the next forward).</summary>
    public int Length { get; private set; }

    /// <summary>
    /// Writes the new keys/values [B, kvHeads, T, D] of one layer after the stored ones and returns
    /// views of everything stored so far including them. <see cref="Advance"/> commits the step after
    /// all layers have appended, so every layer sees the same <see cref="Length"/>.
    /// </summary>
    internal (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (is_grad_enabled())
            throw new InvalidOperationException("KvCache is for inference only; run the forward under torch.no_grad().");
        long t = k.shape[2];
        if (Length + t > Capacity)
            throw new InvalidOperationException($"KvCache capacity {Capacity} exceeded (length {Length} + {t} new positions).");
        _keys[layer].narrow(2, Length, t).copy_(k);
        _values[layer].narrow(2, Length, t).copy_(v);
        return (_keys[layer].narrow(2, 0, Length + t), _values[layer].narrow(2, 0, Length + t));
    }

    internal void Advance(int t) => Length += t;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _keys) t.Dispose();
        foreach (var t in _values) t.Dispose();
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>
/// Rotary position embedding in the HF "rotate_half" layout (first and second half of the head dim
/// form the complex pairs, not interleaved neighbours), which is what Qwen2/Llama checkpoints expect.
/// Cos/sin are computed from explicit position ids rather than a running offset so that left-padded
/// rows start at position 0 at their first real token, both with and without a KV cache.
/// </summary>
public sealed class RotaryEmbedding : nn.Module
{
    public RotaryEmbedding(int headDim, double theta, Llama3RopeScaling? scaling, Device device) : base(nameof(RotaryEmbedding))
    {
        // inv_freq = theta^(-2i/d), kept in float64 so a float64 model is exact; cast at use.
        // Computed on the CPU and then moved, so any device (also "meta") gets the same values.
        var exps = arange(0, headDim, 2, dtype: ScalarType.Float64) / headDim;
        var invFreq = (exps * -Math.Log(theta)).exp();
        if (scaling is not null)
        {
            var scaled = Llama3(invFreq, scaling);
            invFreq.Dispose();
            invFreq = scaled;
        }
        if (device.type != DeviceType.CPU)
        {
            var moved = invFreq.to(device);
            invFreq.Dispose();
            invFreq = moved;
        }
        // Not persistent: it is a pure function of the config, so it stays out of checkpoints and
        // named_parameters(), but it still follows the module across .to(device).
        register_buffer("inv_freq", invFreq, persistent: false);
    }

    /// <summary>
    /// Rounds inv_freq to <paramref name="dtype"/> and back, as torch's <c>module.to(dtype)</c> does to
    /// HF's (floating, non-persistent) inv_freq buffer. Only for reproducing references made that way;
    /// transformers' from_pretrained keeps inv_freq in float32, and so does this class.
    /// </summary>
    internal void RoundFrequencies(ScalarType dtype)
    {
        using var noGrad = no_grad();
        var invFreq = get_buffer("inv_freq")!;
        using var rounded = invFreq.to_type(dtype).to_type(invFreq.dtype);
        invFreq.copy_(rounded);
    }

    /// <summary>transformers' <c>_compute_llama3_parameters</c>: long wavelengths slowed by factor, short kept, the band between interpolated.</summary>
    private static Tensor Llama3(Tensor invFreq, Llama3RopeScaling s)
    {
        using var scope = NewDisposeScope();
        double old = s.OriginalMaxPositionEmbeddings;
        double lowFreqWavelen = old / s.LowFreqFactor, highFreqWavelen = old / s.HighFreqFactor;
        var wavelen = 2 * Math.PI / invFreq;
        var llama = where(wavelen.gt(lowFreqWavelen), invFreq / s.Factor, invFreq);
        var smooth = (old / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        var smoothed = (1 - smooth) * llama / s.Factor + smooth * llama;
        var medium = wavelen.lt(highFreqWavelen).logical_not() & wavelen.gt(lowFreqWavelen).logical_not();
        return where(medium, smoothed, llama).MoveToOuterDisposeScope();
    }

    /// <summary>positionIds [B,T] int64 → (cos, sin) each [B,1,T,headDim] in <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) Compute(Tensor positionIds, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var invFreq = get_buffer("inv_freq")!;
        // Angles in float64 when the model is float64 (exactness tests), else float32 like HF.
        var calcType = dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var freqs = positionIds.to_type(calcType).unsqueeze(-1) * invFreq.to_type(calcType); // [B,T,D/2]
        var emb = cat([freqs, freqs], -1).unsqueeze(1);                                      // [B,1,T,D]
        var cos = emb.cos().to_type(dtype);
        var sin = emb.sin().to_type(dtype);
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>x [B,H,T,D] rotated by (cos, sin) [B,1,T,D].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat([x2.neg(), x1], -1);
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Studies;

/// <summary>
/// One synthetic token position of App. G (eq. 104–105): π_ref = softmax(z̃_ref), π = softmax(s·z̃) with
/// z̃, z̃_ref ~ N(0, I_V) independent and s chosen so that M₃₂(π) = <see cref="TargetMass"/>.
/// Logits are kept 1-D, [V], on <see cref="Device"/> in <see cref="DType"/>; the task owns them (Dispose).
/// </summary>
public sealed class SyntheticTask : IDisposable
{
    /// <summary>The paper's concentration index: the top-32 mass (eq. 106).</summary>
    public const int MassTopK = 32;

    public required Tensor PolicyLogits { get; init; }
    public required Tensor AnchorLogits { get; init; }
    public required double Scale { get; init; }
    public required double TargetMass { get; init; }
    public required double AchievedMass { get; init; }
    public int Vocab => (int)PolicyLogits.shape[0];
    public Device Device => PolicyLogits.device;
    public ScalarType DType => PolicyLogits.dtype;

    /// <summary>Draws a task from <paramref name="seed"/> (z̃ and z̃_ref from one generator, in that order).</summary>
    public static SyntheticTask Create(int vocab, double targetMass, long seed, Device? device = null, ScalarType dtype = ScalarType.Float64)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)seed);
        var z = randn(vocab, dtype: ScalarType.Float64, generator: gen);
        var zr = randn(vocab, dtype: ScalarType.Float64, generator: gen);
        double s = TopMass.FindScale(z, MassTopK, targetMass);
        var policy = (z * s).to(dtype).to(device ?? CPU);
        var anchor = zr.to(dtype).to(device ?? CPU);
        double achieved = TopMass.Of(policy, MassTopK);
        return new SyntheticTask
        {
            PolicyLogits = policy.DetachFromDisposeScope(),
            AnchorLogits = anchor.DetachFromDisposeScope(),
            Scale = s, TargetMass = targetMass, AchievedMass = achieved,
        };
    }

    /// <summary>The top-k indices of π (the sampling policy, which is π itself on-policy), [k] int64.</summary>
    public Tensor TopK(int k) => k == 0 ? empty(0, dtype: ScalarType.Int64, device: Device) : PolicyLogits.topk(k).indexes;

    public void Dispose()
    {
        PolicyLogits.Dispose();
        AnchorLogits.Dispose();
    }
}

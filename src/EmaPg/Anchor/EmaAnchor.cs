using EmaPg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Anchor;

/// <summary>
/// The EMA anchor (eq. 2; Alg. 3 lines 25–26): every <see cref="Period"/> iterations,
/// θ_ema ← η θ_ema + (1 − η) θ, in place over all parameters and buffers; the anchor is the only copy.
/// η = 1 keeps a fixed reference policy (GRPO); η = 0 is a hard reset to the current policy (RPG's
/// "iterative reference").
/// </summary>
public sealed class EmaAnchor
{
    public double Eta { get; }
    public int Period { get; }

    public EmaAnchor(double eta, int period)
    {
        Eta = Check.Range("ema_eta", eta, 0.0, 1.0);
        Period = Check.Range("ema_period", period, 1, int.MaxValue);
    }

    /// <summary>Alg. 3 line 25: updates the anchor when <paramref name="iteration"/> (1-based) is a multiple of T_ema. Returns whether it did.</summary>
    public bool MaybeUpdate(nn.Module anchor, nn.Module policy, long iteration)
    {
        if (iteration % Period != 0) return false;
        Update(anchor, policy, Eta);
        return true;
    }

    /// <summary>θ_ema ← η θ_ema + (1 − η) θ over parameters and buffers, matched by name.</summary>
    public static void Update(nn.Module anchor, nn.Module policy, double eta)
    {
        Check.Range("ema_eta", eta, 0.0, 1.0);
        if (eta == 1.0) return;
        using var _ = no_grad();
        var source = policy.named_parameters().Select(p => (p.name, (Tensor)p.parameter))
            .Concat(policy.named_buffers().Select(b => (b.name, b.buffer))).ToDictionary(t => t.name, t => t.Item2);
        var target = anchor.named_parameters().Select(p => (p.name, (Tensor)p.parameter))
            .Concat(anchor.named_buffers().Select(b => (b.name, b.buffer))).ToList();
        if (target.Count != source.Count)
            throw new ArgumentException($"anchor has {target.Count} parameters+buffers, policy has {source.Count}; they must be the same architecture.");
        foreach (var (name, a) in target)
        {
            if (!source.TryGetValue(name, out var p) || !p.shape.SequenceEqual(a.shape))
                throw new ArgumentException($"anchor tensor '{name}' has no same-shaped counterpart in the policy.");
            if (eta == 0.0 || !a.is_floating_point()) a.copy_(p);   // integer buffers (counters) cannot be averaged
            else if (a.dtype == p.dtype) a.mul_(eta).add_(p, alpha: 1.0 - eta);
            else
            {
                // A lower-precision anchor (anchor_dtype = bfloat16): in the policy's dtype, then rounded once. In place in
                // bfloat16, η and 1 − η would themselves be rounded to bfloat16 (0.9 → 0.8984, 0.1 → 0.1001: weights summing
                // to 0.9984, a shrinkage of the anchor at every update).
                using var scope = NewDisposeScope();
                a.copy_(a.to_type(p.dtype).mul_(eta).add_(p, alpha: 1.0 - eta));
            }
        }
    }

    /// <summary>‖θ − θ_ema‖₂ over parameters: the lag δ_t of eq. 4, logged by the trainer.</summary>
    public static double Lag(nn.Module anchor, nn.Module policy)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var src = policy.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        double sq = 0;
        foreach (var (name, a) in anchor.named_parameters())
            sq += (src[name] - a).square().sum().to_type(ScalarType.Float64).item<double>();
        return Math.Sqrt(sq);
    }
}

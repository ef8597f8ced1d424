using EmaPg.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EmaPg.Optim;

/// <summary>
/// AdamW (Loshchilov &amp; Hutter; PyTorch's update rule, amsgrad off) done entirely with in-place ops
/// on preallocated state, so a step allocates no tensors: TorchSharp's built-in optimizer creates
/// several temporaries per parameter per step, which on small models costs more than the math.
/// Update per parameter p with gradient g at step t:
///   p ← p·(1 − lr·wd);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
///   p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε).
/// Parameters without a gradient are skipped. The bias-correction step t is shared by all
/// parameters, which matches PyTorch whenever every parameter gets a gradient every step (always
/// the case for a policy loss over the whole model).
/// </summary>
public sealed class AdamW : IDisposable
{
    private readonly Parameter[] _params;
    private readonly Tensor[] _m, _v, _scratch;

    public AdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
    {
        _params = parameters.Where(p => p.requires_grad).ToArray();
        LearningRate = Check.Range("learning rate", lr, 0.0, double.PositiveInfinity);
        Beta1 = Check.Range("beta1", beta1, 0.0, 1.0, maxInclusive: false);
        Beta2 = Check.Range("beta2", beta2, 0.0, 1.0, maxInclusive: false);
        Eps = Check.Range("eps", eps, 0.0, double.PositiveInfinity, minInclusive: false);
        WeightDecay = Check.Range("weight decay", weightDecay, 0.0, double.PositiveInfinity);
        _m = _params.Select(p => zeros_like(p).DetachFromDisposeScope()).ToArray();
        _v = _params.Select(p => zeros_like(p).DetachFromDisposeScope()).ToArray();
        // One scratch buffer (per dtype and device) as large as the largest parameter, viewed in each
        // parameter's shape: the step needs only one denominator at a time, so the state is 2×|θ| + max|θ_i|
        // rather than 3×|θ|. The views are made once, so a step allocates nothing.
        _flat = _params.GroupBy(p => (p.dtype, p.device.ToString()))
            .Select(g => empty(g.Max(p => p.numel()), dtype: g.Key.dtype, device: g.First().device).DetachFromDisposeScope())
            .ToArray();
        _scratch = _params.Select(p =>
        {
            var flat = _flat.First(f => f.dtype == p.dtype && f.device.ToString() == p.device.ToString());
            return flat.narrow(0, 0, p.numel()).view(p.shape).DetachFromDisposeScope();
        }).ToArray();
    }

    private readonly Tensor[] _flat;

    /// <summary>May be changed between steps (schedules).</summary>
    public double LearningRate { get; set; }
    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public double WeightDecay { get; }
    /// <summary>Steps taken so far (t of the bias correction); set when restoring a checkpoint.</summary>
    public long StepCount { get; set; }

    /// <summary>The moment estimates by name (m.i, v.i), for checkpoints; restored in place.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> StateTensors() =>
        _m.Select((t, i) => ($"m.{i}", t)).Concat(_v.Select((t, i) => ($"v.{i}", t)));
    public IReadOnlyList<Parameter> Parameters => _params;

    public void Step()
    {
        StepCount++;
        double bc1 = 1 - Math.Pow(Beta1, StepCount);
        double bc2Sqrt = Math.Sqrt(1 - Math.Pow(Beta2, StepCount));
        double stepSize = LearningRate / bc1;
        using var noGrad = no_grad();
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            var g = p.grad;
            if (g is null) continue;
            if (WeightDecay != 0) p.mul_(1 - LearningRate * WeightDecay);
            _m[i].mul_(Beta1).add_(g, alpha: 1 - Beta1);
            _v[i].mul_(Beta2).addcmul_(g, g, value: 1 - Beta2);
            var denom = _scratch[i].copy_(_v[i]).sqrt_().div_(bc2Sqrt).add_(Eps);
            p.addcdiv_(_m[i], denom, value: -stepSize);
        }
    }

    /// <summary>Zeroes gradients in place (keeps the buffers, unlike setting them to null).</summary>
    public void ZeroGrad()
    {
        using var noGrad = no_grad();
        foreach (var p in _params) p.grad?.zero_();
    }

    public void Dispose()
    {
        foreach (var t in _m) t.Dispose();
        foreach (var t in _v) t.Dispose();
        foreach (var t in _scratch) t.Dispose();
        foreach (var t in _flat) t.Dispose();
    }
}

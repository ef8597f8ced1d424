using EmaPg.Divergences;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Audit;

/// <summary>
/// A small categorical problem: policy logits z (the variable), anchor logits and sampling-policy logits,
/// all float64. On-policy problems sample from π_θ itself.
/// </summary>
public sealed class CategoricalProblem
{
    public required double[] PolicyLogits { get; init; }
    public required double[] AnchorLogits { get; init; }
    public required double[] SamplingLogits { get; init; }
    public int Vocab => PolicyLogits.Length;

    /// <summary>Random problem: anchor near the policy (as an EMA anchor is), sampling policy a perturbed policy when off-policy.</summary>
    public static CategoricalProblem Random(int vocab, bool offPolicy, int seed, double scale = 1.5)
    {
        var rng = new Random(seed);
        double N() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var z = Enumerable.Range(0, vocab).Select(_ => scale * N()).ToArray();
        var zr = z.Select(v => v + 0.8 * N()).ToArray();
        var zs = offPolicy ? z.Select(v => v + 0.6 * N()).ToArray() : (double[])z.Clone();
        return new CategoricalProblem { PolicyLogits = z, AnchorLogits = zr, SamplingLogits = zs };
    }
}

/// <summary>
/// Exact expectations by enumeration: every token p of the vocabulary is "sampled" once, in its own row,
/// and the per-row estimates are weighted by π_sampling(p). One backward pass of Σ_p π_s(p)·K̂(p) then gives
/// E_p[∇_z K̂] exactly (π_s is data, not differentiated), which is what a trainer's gradient averages to.
/// </summary>
public static class ExactExpectation
{
    public sealed record Moments(double Value, double[] Gradient);

    /// <summary>The index set q (identical for every row) an estimator uses on this problem.</summary>
    public static long[] IndexSet(DivergenceEstimator e, CategoricalProblem p, int k)
    {
        if (e.Index == IndexSource.None) return [];
        var logits = e.Index == IndexSource.Anchor ? p.AnchorLogits : p.SamplingLogits;
        return logits.Select((v, i) => (v, i)).OrderByDescending(t => t.v).ThenBy(t => t.i).Take(k).Select(t => (long)t.i).ToArray();
    }

    /// <summary>Builds the enumeration batch: row p has sampled token p. Returns the policy-logit leaf too.</summary>
    public static (KlInputs Inputs, Tensor Z, Tensor SamplingProbs) Batch(DivergenceEstimator e, CategoricalProblem p, long[] q)
    {
        int v = p.Vocab;
        var z = tensor(p.PolicyLogits, dtype: float64).requires_grad_(true);
        var zr = tensor(p.AnchorLogits, dtype: float64);
        var zs = tensor(p.SamplingLogits, dtype: float64);
        var rows = z.unsqueeze(0).expand(v, v);
        var sampled = arange(v, dtype: int64);
        var samplingLogp = zs.log_softmax(0);
        var qT = q.Length == 0 && e.Index == IndexSource.None ? null : tensor(q, dtype: int64).reshape(1, q.Length).expand(v, q.Length).contiguous();
        var inputs = KlInputs.FromLogits(rows, zr.unsqueeze(0).expand(v, v), samplingLogp, sampled, qT, keepFullLogits: e.NeedsFullLogits);
        return (inputs, z, samplingLogp.exp());
    }

    /// <summary>E_{p∼π_s}[K̂(p)] and E_{p∼π_s}[∇_z K̂(p)], exactly.</summary>
    public static Moments Expect(DivergenceEstimator e, CategoricalProblem p, int k, EstimatorOptions o)
    {
        using var scope = NewDisposeScope();
        var (x, z, ps) = Batch(e, p, IndexSet(e, p, k));
        var est = e.Compute(x, o);
        var mean = (ps * est).sum();
        mean.backward();
        return new Moments(mean.item<double>(), z.grad!.data<double>().ToArray());
    }

    /// <summary>
    /// Total variance of the per-sample gradient, E‖∇K̂(p) − E∇K̂‖², by one backward pass per token
    /// (fine for |V| ≤ 64). Used to check that a bias correction does not raise gradient variance.
    /// </summary>
    public static double GradientVariance(DivergenceEstimator e, CategoricalProblem p, int k, EstimatorOptions o)
    {
        using var scope = NewDisposeScope();
        var q = IndexSet(e, p, k);
        int v = p.Vocab;
        var grads = new double[v][];
        var (x, z, ps) = Batch(e, p, q);
        var est = e.Compute(x, o);
        for (int i = 0; i < v; i++)
        {
            var g = autograd.grad([est[i]], [z], retain_graph: true)[0];
            grads[i] = g.data<double>().ToArray();
        }
        var w = ps.data<double>().ToArray();
        var mean = new double[v];
        for (int i = 0; i < v; i++) for (int j = 0; j < v; j++) mean[j] += w[i] * grads[i][j];
        double var_ = 0;
        for (int i = 0; i < v; i++) for (int j = 0; j < v; j++) var_ += w[i] * (grads[i][j] - mean[j]) * (grads[i][j] - mean[j]);
        return var_;
    }

    /// <summary>
    /// Closed form of D_f(π_θ‖π_ref) and its gradient in the policy logits:
    /// ∂D_f/∂z_i = π_i (f′(t_i) − Σ_j π_j f′(t_j)), t = π_θ/π_ref. No autograd involved.
    /// </summary>
    public static Moments ClosedForm(FDivergence f, CategoricalProblem p)
    {
        using var scope = NewDisposeScope();
        var lp = tensor(p.PolicyLogits, dtype: float64).log_softmax(0);
        var la = tensor(p.AnchorLogits, dtype: float64).log_softmax(0);
        var value = (la.exp() * f.FOfLogT(lp - la)).sum().item<double>();
        var pi = lp.exp();
        var fp = f.FPrimeOfT((lp - la).exp());
        var grad = pi * (fp - (pi * fp).sum());
        return new Moments(value, grad.data<double>().ToArray());
    }

    public static double RelativeError(double got, double want) => Math.Abs(got - want) / Math.Max(Math.Abs(want), 1e-300);

    public static double RelativeError(double[] got, double[] want)
    {
        double num = 0, den = 0;
        for (int i = 0; i < got.Length; i++) { num += (got[i] - want[i]) * (got[i] - want[i]); den += want[i] * want[i]; }
        return Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-300);
    }
}

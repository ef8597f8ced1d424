using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Stability;

/// <summary>An estimate of tr F = E‖∇_θ log π_θ(y|x)‖² from a batch of sequences, an upper bound on λ_max(F) (eq. 28).</summary>
public sealed record FisherTraceEstimate(double Trace, double StandardError, int Sequences)
{
    /// <summary>λ̂_max: the trace, which bounds the largest Fisher eigenvalue from above (F ⪰ 0).</summary>
    public double LambdaMaxUpperBound => Trace;
}

/// <summary>
/// The Fisher-trace bound of App. C (eq. 28): λ_max(F) ≤ tr F = E_{x, y∼π_θ}‖∇_θ log π_θ(y|x)‖². Estimated
/// from per-sequence score norms, either given directly or computed by autograd from a module and a function
/// returning per-sequence log-probs. Sequences sampled on-policy get equal weight; exact enumeration passes
/// the probabilities π_θ(y|x) (times the prompt weights) as weights.
/// </summary>
public static class FisherTrace
{
    /// <summary>From per-sequence squared norms ‖∇_θ log π_θ(y_s|x_s)‖²; optional non-negative weights (normalised here).</summary>
    public static FisherTraceEstimate FromSquaredNorms(IReadOnlyList<double> squaredNorms, IReadOnlyList<double>? weights = null)
    {
        int n = squaredNorms.Count;
        if (n == 0) throw new ArgumentException("need at least one sequence", nameof(squaredNorms));
        if (squaredNorms.Any(x => !(x >= 0) || double.IsInfinity(x))) throw new ArgumentException("squared norms must be finite and non-negative", nameof(squaredNorms));
        if (weights is null)
        {
            double mean = squaredNorms.Average();
            double se = n < 2 ? double.NaN : Math.Sqrt(squaredNorms.Sum(x => (x - mean) * (x - mean)) / (n - 1) / n);
            return new FisherTraceEstimate(mean, se, n);
        }
        if (weights.Count != n) throw new ArgumentException("one weight per sequence", nameof(weights));
        if (weights.Any(w => !(w >= 0) || double.IsInfinity(w))) throw new ArgumentException("weights must be finite and non-negative", nameof(weights));
        double total = weights.Sum();
        if (!(total > 0)) throw new ArgumentException("weights must not all be zero", nameof(weights));
        double trace = 0;
        for (int i = 0; i < n; i++) trace += weights[i] / total * squaredNorms[i];
        // Weighted (enumerated) expectations are exact: no sampling error to report.
        return new FisherTraceEstimate(trace, 0, n);
    }

    /// <summary>From per-sequence gradient norms ‖∇_θ log π_θ(y_s|x_s)‖.</summary>
    public static FisherTraceEstimate FromGradientNorms(IReadOnlyList<double> norms, IReadOnlyList<double>? weights = null) =>
        FromSquaredNorms(norms.Select(x => x * x).ToList(), weights);

    /// <summary>
    /// Per-sequence squared score norms by autograd: <paramref name="sequenceLogProbs"/> returns log π_θ(y_s|x_s)
    /// for the batch, [S], as a differentiable function of the module's trainable parameters; one backward
    /// pass per sequence (the graph is built once and retained).
    /// </summary>
    public static double[] SquaredScoreNorms(nn.Module module, Func<Tensor> sequenceLogProbs)
    {
        using var scope = NewDisposeScope();
        var parameters = module.parameters().Where(p => p.requires_grad).ToArray();
        if (parameters.Length == 0) throw new ArgumentException("the module has no trainable parameters", nameof(module));
        var logp = sequenceLogProbs();
        if (logp.dim() != 1) throw new ArgumentException($"per-sequence log-probs must be 1-D [S], got shape [{string.Join(", ", logp.shape)}]");
        int s = (int)logp.shape[0];
        var result = new double[s];
        for (int i = 0; i < s; i++)
        {
            using var inner = NewDisposeScope();
            var grads = autograd.grad([logp[i]], parameters, retain_graph: i < s - 1, allow_unused: true);
            double sq = 0;
            foreach (var g in grads)
                if (g is not null && !g.IsInvalid) sq += g.to_type(ScalarType.Float64).square().sum().item<double>();
            result[i] = sq;
        }
        return result;
    }

    /// <summary>tr F estimated on a batch: per-sequence score norms of <paramref name="module"/> by autograd, then their (weighted) mean.</summary>
    public static FisherTraceEstimate Estimate(nn.Module module, Func<Tensor> sequenceLogProbs, IReadOnlyList<double>? weights = null) =>
        FromSquaredNorms(SquaredScoreNorms(module, sequenceLogProbs), weights);
}

using EmaPg.Divergences;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Studies;

/// <summary>
/// Gradients of per-token KL estimators with respect to the policy logits of one synthetic task, always
/// through the library's estimators and autograd (never through re-derived formulas).
///
/// A B-sample estimate is the mean of the estimator over B i.i.d. tokens drawn from π (on-policy, s = 1).
/// All B tokens share the same logits, so a token only matters through how often it was drawn: the batch is
/// a multinomial count vector, each distinct token is one row of the <see cref="KlInputs"/>, weighted by
/// count/B. R independent repetitions run in one forward/backward: the policy logits are an [R, V] leaf
/// (one row per repetition), log-softmaxed once, and the rows of the inputs gather from their repetition's
/// row, so nothing of size [B, V] or [rows, V] is ever materialised. ∂/∂(row r) of Σ_r (estimate_r) is
/// repetition r's gradient.
/// </summary>
public static class BatchGradient
{
    /// <summary>
    /// The exact reverse-KL gradient ∇_z KL(softmax z ‖ π_ref), [V], by autograd through the registry's
    /// "exact-reverse" estimator on full logits.
    /// </summary>
    public static Tensor TrueGradient(SyntheticTask task)
    {
        using var scope = NewDisposeScope();
        var z = task.PolicyLogits.detach().clone().unsqueeze(0).requires_grad_(true);
        var zr = task.AnchorLogits.unsqueeze(0);
        var sampled = zeros(1, dtype: ScalarType.Int64, device: task.Device);
        var logp = z.detach().log_softmax(1).gather(1, sampled.unsqueeze(1)).squeeze(1);
        var inputs = KlInputs.FromLogits(z, zr, logp, sampled, null, keepFullLogits: true);
        var est = Estimators.Get("exact-reverse").Compute(inputs, checkFinite: false).sum();
        var g = autograd.grad([est], [z])[0].squeeze(0);
        return g.detach().DetachFromDisposeScope();
    }

    /// <summary>
    /// Builds the estimator inputs for the rows (rep, token) of a batch of repetitions: <paramref name="logp"/>
    /// is log softmax of the [R, V] policy-logit leaf, <paramref name="anchorLogp"/> the anchor's [V]
    /// log-probs, <paramref name="q"/> the index set [k] shared by all rows (null: none). Equivalent to
    /// <see cref="KlInputs.FromLogits"/> on the rows' logits (a test checks it), without the [rows, V] copy:
    /// the per-row values are gathered from their repetition's row, the index-set values from [R, k].
    /// </summary>
    public static KlInputs Inputs(Tensor logp, Tensor anchorLogp, Tensor rep, Tensor token, Tensor? q)
    {
        long r = logp.shape[0], v = logp.shape[1], n = rep.shape[0];
        var policyLogp = logp.reshape(-1).index_select(0, rep * v + token);
        Tensor? lpq = null, laq = null, inQ = null;
        if (q is not null)
        {
            long k = q.shape[0];
            var perRep = logp.gather(1, q.unsqueeze(0).expand(r, k)); // [R, k]
            lpq = r == 1 ? perRep.expand(n, k) : perRep.index_select(0, rep);
            laq = anchorLogp.index_select(0, q).unsqueeze(0).expand(n, k);
            inQ = KlInputs.Membership(q.unsqueeze(0).expand(n, k), token);
        }
        return new KlInputs
        {
            PolicyLogp = policyLogp,
            AnchorLogp = anchorLogp.index_select(0, token),
            SamplingLogp = policyLogp.detach(), // on-policy: π_sampling = π_θ, so s = 1
            PolicyLogpQ = lpq,
            AnchorLogpQ = laq,
            SampledInQ = inQ,
        };
    }

    /// <summary>
    /// R batches of B i.i.d. draws from π (inverse CDF on float64 cumulative probabilities), as distinct
    /// (rep, token) rows with their counts: rep [n], token [n], count [n] (int64).
    /// </summary>
    public static (Tensor Rep, Tensor Token, Tensor Count) Draw(Tensor cdf, int batch, int reps, Generator gen)
    {
        long v = cdf.shape[0];
        var u = rand(reps, batch, dtype: ScalarType.Float64, device: cdf.device, generator: gen) * cdf[-1];
        var token = searchsorted(cdf, u, right: true).clamp_max(v - 1);
        var flat = (arange(reps, dtype: ScalarType.Int64, device: cdf.device).unsqueeze(1) * v + token).reshape(-1);
        var (uniq, _, counts) = flat.unique(sorted: true, return_inverse: false, return_counts: true);
        return (uniq.div(v, rounding_mode: RoundingMode.floor), uniq.remainder(v), counts!);
    }

    /// <summary>
    /// Draws <paramref name="reps"/> independent B-sample batches from π and returns, for each, the squared
    /// error ‖ĝ_r − g_true‖² of the B-sample estimate's gradient in the logits, [R] float64 (on CPU).
    /// <paramref name="cdf"/> is the cumulative sum of π in float64 (<see cref="Cdf"/>).
    /// </summary>
    public static double[] SquaredErrors(SyntheticTask task, DivergenceEstimator estimator, Tensor? q, int batch, int reps, Tensor gTrue, Tensor cdf, Generator gen, EstimatorOptions? options = null)
    {
        using var scope = NewDisposeScope();
        int v = task.Vocab;
        var (rep, token, count) = Draw(cdf, batch, reps, gen);
        var weight = count.to_type(task.DType) / batch;
        var z = task.PolicyLogits.detach().unsqueeze(0).expand(reps, v).clone().requires_grad_(true);
        var logp = z.log_softmax(1);
        var anchorLogp = task.AnchorLogits.log_softmax(0);
        var inputs = Inputs(logp, anchorLogp, rep, token, q);
        var est = estimator.Compute(inputs, options, checkFinite: false);
        var total = (weight * est).sum();
        var grad = autograd.grad([total], [z])[0];
        var err = (grad - gTrue.unsqueeze(0)).to_type(ScalarType.Float64).square().sum(1);
        return err.cpu().data<double>().ToArray();
    }

    /// <summary>Cumulative probabilities of π in float64, [V], for <see cref="Draw"/>.</summary>
    public static Tensor Cdf(SyntheticTask task) => task.PolicyLogits.to_type(ScalarType.Float64).softmax(0).cumsum(dim: 0);
}

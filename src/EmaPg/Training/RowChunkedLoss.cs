using EmaPg.Divergences;
using EmaPg.Heads;
using EmaPg.Objectives;
using static TorchSharp.torch;

namespace EmaPg.Training;

/// <summary>
/// A mini-batch's loss as the token-local callback of <see cref="TokenHead.FusedLoss"/>: each row chunk's share of
/// <see cref="KlRegularizedLoss.Compute"/> (<see cref="KlRegularizedLoss.ComputeRows"/>) with the whole mini-batch's
/// aggregation weights; the reported terms are the sums of the shares.
/// </summary>
internal sealed class RowChunkedLoss
{
    private readonly double _beta;
    private readonly PolicyLossOptions _options;
    private readonly DivergenceEstimator? _kl;
    private readonly EstimatorOptions _klOptions;
    private readonly PolicyLoss _policyLoss;
    private readonly Tensor _mask, _oldLogp, _adv, _sampled, _samplingLogp, _anchorLogp, _wJ, _wKl, _wTok;
    private readonly Tensor? _q, _anchorLogpQ;
    // Running sums of the reported terms, allocated here (the step's scope): the callback runs inside the fused function's scopes.
    private readonly Tensor _j, _klSum, _clip;

    /// <param name="mask">[b, L]; oldLogp [b, L]; adv [b] or [b, L]; sampled, samplingLogp, anchorLogp [b·L]; q, anchorLogpQ [b·L, k].</param>
    /// <param name="options">the clip range and dual-clip bound (its β is ignored: <paramref name="beta"/> is the KL weight).</param>
    public RowChunkedLoss(double beta, PolicyLossOptions options, DivergenceEstimator? kl, EstimatorOptions klOptions, PolicyLoss policyLoss, LossAggregationMode aggregation,
        LossAggregationMode? klMode, Tensor mask, Tensor oldLogp, Tensor adv, Tensor sampled, Tensor samplingLogp, Tensor anchorLogp, Tensor? q, Tensor? anchorLogpQ)
    {
        _beta = beta; _options = options; _kl = kl; _klOptions = klOptions; _policyLoss = policyLoss;
        var dtype = oldLogp.dtype;
        _mask = mask.reshape(-1);
        _oldLogp = oldLogp.reshape(-1);
        _adv = (adv.dim() == 1 ? adv.unsqueeze(1).expand_as(oldLogp) : adv).reshape(-1);
        _sampled = sampled; _samplingLogp = samplingLogp; _anchorLogp = anchorLogp; _q = q; _anchorLogpQ = anchorLogpQ;
        _wJ = LossAggregation.Weights(mask, aggregation, dtype).reshape(-1);
        _wKl = LossAggregation.Weights(mask, klMode ?? aggregation, dtype).reshape(-1);
        _wTok = LossAggregation.Weights(mask, LossAggregationMode.TokenMean, dtype).reshape(-1);
        _j = zeros([], dtype, oldLogp.device);
        _klSum = zeros([], dtype, oldLogp.device);
        _clip = zeros([], dtype, oldLogp.device);
    }

    public Tensor Compute(TokenHeadOutputs rows, long start, long count)
    {
        Tensor R(Tensor t) => t.narrow(0, start, count);
        Tensor? klTok = null;
        if (_kl is not null)
        {
            var inputs = KlInputs.FromHead(rows, R(_sampled), R(_samplingLogp), R(_anchorLogp), _q is null ? null : R(_q), _anchorLogpQ is null ? null : R(_anchorLogpQ));
            klTok = _kl.Compute(inputs, _klOptions, checkFinite: false);
        }
        var terms = KlRegularizedLoss.ComputeRows(rows.LogpTarget, R(_oldLogp), R(_adv), R(_mask), klTok, _beta, (R(_wJ), R(_wKl), R(_wTok)), _policyLoss,
            _options.EpsLow, _options.EpsHigh, R(_anchorLogp), _options.DualClipC);
        _j.add_(terms.PolicyObjective);
        _klSum.add_(terms.Kl);
        _clip.add_(terms.ClipFraction);
        return terms.Loss;
    }

    /// <summary>The mini-batch's terms once every row chunk has been computed.</summary>
    public LossTerms Terms(Tensor loss) => new(loss, _j, _klSum, _clip);
}

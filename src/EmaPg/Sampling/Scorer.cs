using EmaPg.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Sampling;

/// <summary>Teacher-forced log-probs of responses, used for π_θ (with grad), π_old and the EMA anchor (under no_grad).</summary>
public static class Scorer
{
    /// <summary>
    /// A token-local loss of the response tokens straight from the model's hidden states (<see cref="Heads.TokenHead.FusedLoss"/>:
    /// three GEMMs, no [B·L, |V|] tensor). The loss's rows are the response positions flattened to B·L, row-major.
    /// </summary>
    public static (Tensor Loss, Heads.TokenHeadOutputs Outputs) FusedLoss(CausalLM model, Tensor sequences, Tensor attentionMask, long promptLength,
        Heads.TokenLocalLoss loss, Tensor? q = null)
    {
        if (promptLength < 1 || promptLength >= sequences.shape[1])
            throw new ArgumentException($"promptLength must be in [1, {sequences.shape[1] - 1}], got {promptLength}.");
        long l = sequences.shape[1] - promptLength;
        var hidden = model.HiddenStates(sequences, attentionMask).narrow(1, promptLength - 1, l);
        long b = hidden.shape[0];
        var targets = sequences.narrow(1, promptLength, l).reshape(-1);
        return Heads.TokenHead.FusedLoss(hidden.reshape(b * l, hidden.shape[2]), model.LmHeadWeight, targets, loss, q);
    }

    /// <summary>
    /// One forward over <paramref name="sequences"/> [B, Lp+L] (prompt then response, as from
    /// <see cref="GenerationResult.Sequences"/>), returning quantities for the L response positions.
    /// Gradients flow when grad mode is on, so the caller chooses by wrapping in torch.no_grad().
    /// The distribution is softmax(logits / <paramref name="temperature"/>) over the full vocabulary
    /// (no top-k/top-p filtering), matching <see cref="Sampler.Generate"/> with filters off.
    /// </summary>
    /// <param name="attentionMask">[B, Lp+L], 1 on real tokens (see <see cref="GenerationResult.AttentionMask"/>)</param>
    /// <param name="promptLength">Lp, the (padded) prompt width; response token j sits at column Lp+j</param>
    /// <param name="gatherIndices">optional [B,L,k] int64 token ids whose log-probs to return (e.g. another policy's top-k)</param>
    /// <param name="topK">when &gt; 0, also return this model's top-k token ids [B,L,k]</param>
    /// <param name="returnFull">also return the full log-prob table [B,L,V] (cheap for small vocabularies; exact KL)</param>
    /// <param name="fused">compute from hidden states with the vocabulary-chunked <see cref="Heads.TokenHead.Fused"/>, so no
    /// [B, L, |V|] tensor exists (not with <paramref name="returnFull"/>)</param>
    public static ScoreResult Score(CausalLM model, Tensor sequences, Tensor attentionMask, long promptLength,
        double temperature = 1.0, Tensor? gatherIndices = null, int topK = 0, bool returnFull = false, bool fused = false)
    {
        if (promptLength < 1 || promptLength >= sequences.shape[1])
            throw new ArgumentException($"promptLength must be in [1, {sequences.shape[1] - 1}], got {promptLength}.");
        if (!(temperature > 0)) throw new ArgumentException($"temperature must be > 0, got {temperature}.");
        if (fused && returnFull) throw new ArgumentException("the fused head never forms the full log-prob table; returnFull needs fused = false.");
        using var scope = NewDisposeScope();
        long l = sequences.shape[1] - promptLength;
        if (fused)
        {
            var hidden = model.HiddenStates(sequences, attentionMask).narrow(1, promptLength - 1, l);
            long b = hidden.shape[0];
            var flat = hidden.reshape(b * l, hidden.shape[2]);
            var targets = sequences.narrow(1, promptLength, l).reshape(-1);
            var weight = model.LmHeadWeight;
            if (model.IsReducedPrecision) (flat, weight) = (flat.to_type(ScalarType.Float32), weight.to_type(ScalarType.Float32));
            var head = Heads.TokenHead.Fused(flat, weight, targets, gatherIndices?.reshape(b * l, -1), temperature, topK);
            // Autograd's backward of the custom function reads every output it returned (zeros for those without a gradient),
            // so with grad on they must outlive this scope: the caller's scope frees them.
            if (is_grad_enabled()) head.MoveToOuterDisposeScope();
            return new ScoreResult(
                head.LogpTarget.reshape(b, l).MoveToOuterDisposeScope(),
                head.LogpQ?.reshape(b, l, -1).MoveToOuterDisposeScope(),
                head.TopKIndices?.reshape(b, l, -1).MoveToOuterDisposeScope(),
                null,
                head.TopKLogp?.reshape(b, l, -1).MoveToOuterDisposeScope());
        }
        // A 16-bit model (a BFloat16 anchor) runs its body in that type and its head in float32, so log-probs are float32.
        var logits = model.IsReducedPrecision
            ? model.HiddenStates(sequences, attentionMask).to_type(ScalarType.Float32).matmul(model.LmHeadWeight.to_type(ScalarType.Float32).t())
            : model.Forward(sequences, attentionMask);
        // The logit at column c predicts the token at c+1, so columns Lp-1 .. Lp+L-2 score the response.
        var logp = (logits.narrow(1, promptLength - 1, l) / temperature).log_softmax(-1);
        var response = sequences.narrow(1, promptLength, l);
        var tokenLogp = logp.gather(-1, response.unsqueeze(-1)).squeeze(-1);
        var gathered = gatherIndices is null ? null : logp.gather(-1, gatherIndices);
        Tensor? top = null, topValues = null;
        if (topK > 0)
        {
            // The indices are data; their log-probs keep the graph so a caller can differentiate them.
            using (no_grad()) top = logp.topk(topK, dim: -1).indexes;
            topValues = logp.gather(-1, top);
        }
        return new ScoreResult(
            tokenLogp.MoveToOuterDisposeScope(),
            gathered?.MoveToOuterDisposeScope(),
            top?.MoveToOuterDisposeScope(),
            returnFull ? logp.MoveToOuterDisposeScope() : null,
            topValues?.MoveToOuterDisposeScope());
    }

    /// <summary>Scores the responses of a <see cref="GenerationResult"/>.</summary>
    public static ScoreResult Score(CausalLM model, GenerationResult generation,
        double temperature = 1.0, Tensor? gatherIndices = null, int topK = 0, bool returnFull = false, bool fused = false)
    {
        using var scope = NewDisposeScope();
        var result = Score(model, generation.Sequences(), generation.AttentionMask(), generation.PromptLength, temperature, gatherIndices, topK, returnFull, fused);
        result.MoveToOuterDisposeScope();
        return result;
    }
}

/// <summary>Output of <see cref="Scorer.Score(CausalLM, Tensor, Tensor, long, double, Tensor?, int, bool, bool)"/>; all [B,L,…].</summary>
public sealed class ScoreResult(Tensor logProbs, Tensor? gatheredLogProbs, Tensor? topKIndices, Tensor? fullLogProbs, Tensor? topKLogProbs = null) : IDisposable
{
    /// <summary>[B,L] log-prob of each response token (model dtype). Positions past a row's stop token are meaningless; apply the response mask.</summary>
    public Tensor LogProbs { get; } = logProbs;
    /// <summary>[B,L,k] log-probs at the requested indices, or null.</summary>
    public Tensor? GatheredLogProbs { get; } = gatheredLogProbs;
    /// <summary>[B,L,k] int64 top-k token ids of this model, or null.</summary>
    public Tensor? TopKIndices { get; } = topKIndices;
    /// <summary>[B,L,V] full log-prob table, or null.</summary>
    public Tensor? FullLogProbs { get; } = fullLogProbs;
    /// <summary>[B,L,k] log-probs at <see cref="TopKIndices"/>, or null.</summary>
    public Tensor? TopKLogProbs { get; } = topKLogProbs;

    internal void MoveToOuterDisposeScope()
    {
        LogProbs.MoveToOuterDisposeScope();
        GatheredLogProbs?.MoveToOuterDisposeScope();
        TopKIndices?.MoveToOuterDisposeScope();
        FullLogProbs?.MoveToOuterDisposeScope();
        TopKLogProbs?.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        LogProbs.Dispose();
        GatheredLogProbs?.Dispose();
        TopKIndices?.Dispose();
        FullLogProbs?.Dispose();
        TopKLogProbs?.Dispose();
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Sampling;

/// <summary>
/// A batch of sampled responses. Tensors follow the caller's dispose scope (they are moved out of
/// the sampler's scopes); <see cref="Dispose"/> frees them early. L is the longest response in the
/// batch (≤ max new tokens). All per-token tensors are aligned on the response axis.
/// </summary>
public sealed class GenerationResult : IDisposable
{
    internal GenerationResult(Tensor promptIds, Tensor promptMask, Tensor responseIds, Tensor responseMask,
        Tensor logProbs, Tensor? topKIndices, int[][] responseTokens, bool[] stopped, Tensor? topKLogProbs = null, IReadOnlyList<string>? weightVersions = null)
    {
        TopKLogProbs = topKLogProbs;
        WeightVersions = weightVersions;
        PromptIds = promptIds;
        PromptMask = promptMask;
        ResponseIds = responseIds;
        ResponseMask = responseMask;
        LogProbs = logProbs;
        TopKIndices = topKIndices;
        ResponseTokens = responseTokens;
        Stopped = stopped;
    }

    /// <summary>[B,Lp] int64, left-padded (see <see cref="PromptBatch.LeftPad"/>).</summary>
    public Tensor PromptIds { get; }
    /// <summary>[B,Lp] int64, 1 on real prompt tokens.</summary>
    public Tensor PromptMask { get; }
    /// <summary>[B,L] int64; pad token after a row stopped.</summary>
    public Tensor ResponseIds { get; }
    /// <summary>[B,L] float32; 1 up to and including the stop token, 0 after it. From a multi-turn rollout
    /// (<see cref="Environments.Search.SearchRollout.ToGeneration"/>) it is the loss mask: 0 also on observation tokens.</summary>
    public Tensor ResponseMask { get; }
    /// <summary>[B,L] float32; log-prob of each generated token under the distribution it was drawn
    /// from (temperature-scaled, after any filtering); 0 where the mask is 0.</summary>
    public Tensor LogProbs { get; }
    /// <summary>[B,L,k] int64 top-k token indices of the sampling distribution, or null when not requested.</summary>
    public Tensor? TopKIndices { get; }
    /// <summary>[B,L,k] float32 log-probs at <see cref="TopKIndices"/> (descending), or null when not requested.</summary>
    public Tensor? TopKLogProbs { get; }
    /// <summary>Per row, the weight version of the server that sampled it (remote rollouts); null for in-process sampling.</summary>
    public IReadOnlyList<string>? WeightVersions { get; }
    /// <summary>Per row, the generated tokens up to and including the stop token (for rewards/decoding).</summary>
    public int[][] ResponseTokens { get; }
    /// <summary>Per row, whether a stop token was emitted (false = cut off by max new tokens).</summary>
    public bool[] Stopped { get; }

    public long Batch => ResponseIds.shape[0];
    public long PromptLength => PromptIds.shape[1];
    public long ResponseLength => ResponseIds.shape[1];

    /// <summary>Prompt and response concatenated, [B, Lp+L]: the input of <see cref="Scorer.Score"/>.</summary>
    public Tensor Sequences() => cat([PromptIds, ResponseIds], 1);

    /// <summary>[B, Lp+L] int64: prompt mask, then ones over the whole response (the positions after
    /// the stop token were fed to the model during sampling too and never affect earlier ones).</summary>
    public Tensor AttentionMask() => cat([PromptMask, ones_like(ResponseIds)], 1);

    public void Dispose()
    {
        PromptIds.Dispose();
        PromptMask.Dispose();
        ResponseIds.Dispose();
        ResponseMask.Dispose();
        LogProbs.Dispose();
        TopKIndices?.Dispose();
        TopKLogProbs?.Dispose();
    }
}

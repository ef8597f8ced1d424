using static TorchSharp.torch;

namespace EmaPg.Heads;

/// <summary>
/// The LM head's per-token quantities from hidden states h [N, H] and the head weight W [|V|, H]:
/// log π at the target, log Z, entropy, log π at an index set q and the top-k (see <see cref="TokenHeadOutputs"/>).
/// <see cref="Fused"/> never holds an [N, |V|] tensor; <see cref="Unfused"/> is the reference it is tested and
/// benchmarked against (full logits, log-softmax, gathers), the way the scorer computes them today.
/// Both take the same arguments and return the same record, so a caller switches by changing the call.
/// </summary>
public static class TokenHead
{
    /// <summary>Elements of one chunk's logits the default chunk size aims for: 2^24 (64 MiB in float32; the op keeps two such buffers).</summary>
    public const long DefaultChunkElements = 1L << 24;

    /// <summary>Vocabulary chunk for N tokens: 2^24 / N, at least 128 columns so each GEMM stays efficient.</summary>
    public static int DefaultChunkSize(long tokens) => (int)Math.Max(128, DefaultChunkElements / Math.Max(1, tokens));

    /// <summary>
    /// Chunked over the vocabulary (online log-sum-exp) with a custom autograd function whose backward
    /// recomputes each chunk's logits and accumulates ∂/∂h and ∂/∂W chunk by chunk (<see cref="FusedTokenHeadFunction"/>).
    /// Extra memory: O(N·chunk) temporaries plus O(N·(k + k')) outputs; no [N, |V|] tensor in forward or backward.
    /// </summary>
    /// <param name="hidden">h [N, H], float32 or float64.</param>
    /// <param name="weight">W [|V|, H], same dtype and device as h.</param>
    /// <param name="targets">[N] int64 in [0, |V|): the token whose log-prob <see cref="TokenHeadOutputs.LogpTarget"/> is.</param>
    /// <param name="q">optional [N, k] int64 index set (k ≥ 0), e.g. the sampler's or the anchor's top-k.</param>
    /// <param name="temperature">T &gt; 0: the distribution is softmax(h·Wᵀ / T).</param>
    /// <param name="topK">k' in [0, |V|]: also return this distribution's top-k' indices and their log-probs.</param>
    /// <param name="chunkSize">vocabulary columns per chunk, ≥ 1; null: <see cref="DefaultChunkSize"/>.</param>
    public static TokenHeadOutputs Fused(Tensor hidden, Tensor weight, Tensor targets, Tensor? q = null, double temperature = 1.0, int topK = 0, int? chunkSize = null)
    {
        Validate(hidden, weight, targets, q, temperature, topK);
        int chunk = chunkSize ?? DefaultChunkSize(hidden.shape[0]);
        if (chunk < 1) throw new ArgumentException($"chunkSize must be ≥ 1, got {chunk}.");
        // The inputs enter through a view: our backward's gradients are still referenced from .NET when autograd
        // receives them, so AccumulateGrad would copy them into .grad (another [|V|, H] for W); the view's own
        // backward hands autograd a fresh alias of the same storage, which it adopts without a copy.
        Tensor h = Alias(hidden), w = Alias(weight);
        // Only the outputs go to the caller's scope; every other handle apply leaves (the forward's raw outputs, which share
        // the outputs' grad_fn, the saved copies, TorchSharp's output cache, never read since the function does not
        // materialise gradients) is disposed here, so the graph dies with the caller's outputs instead of at the next GC.
        List<Tensor> outs;
        using (var applyScope = NewDisposeScope())
        {
            outs = FusedTokenHeadFunction.apply(h, w, targets, q, temperature, topK, chunk);
            foreach (var o in outs) o.MoveToOuterDisposeScope();
        }
        return new TokenHeadOutputs
        {
            LogpTarget = outs[0],
            LogZ = outs[1],
            Entropy = outs[2],
            // Unrequested outputs are empty; they stay in the caller's scope with the others, so one disposal ends the graph.
            LogpQ = q is null ? null : outs[3],
            TopKIndices = topK == 0 ? null : outs[4],
            TopKLogp = topK == 0 ? null : outs[5],
            Unrequested = [.. (q is null ? new[] { outs[3] } : []), .. (topK == 0 ? new[] { outs[4], outs[5] } : [])],
        };
    }

    /// <summary>Elements of one row chunk's logits <see cref="FusedLoss"/> aims for: 2^25 (128 MiB in float32; it keeps two such buffers).</summary>
    public const long DefaultRowChunkElements = 1L << 25;

    /// <summary>Rows per chunk of <see cref="FusedLoss"/> for a vocabulary of |V|: 2^25 / |V|, at least 1.</summary>
    public static int DefaultRowChunk(long vocab) => (int)Math.Max(1, DefaultRowChunkElements / Math.Max(1, vocab));

    /// <summary>
    /// A token-local loss L = Σ_chunks <paramref name="loss"/>(outputs of the chunk's rows) straight from h and W, in the three
    /// GEMMs of an LM head's forward + backward: the gradients w.r.t. h and W are formed in the forward pass, row chunk by
    /// row chunk, from the loss's gradient w.r.t. each row's outputs, so no chunk's logits are recomputed and no [N, |V|]
    /// tensor exists (<see cref="FusedLinearLossFunction"/>). The outputs are those of <see cref="Fused"/> without the top-k.
    /// A loss that couples tokens through the head's outputs (GSPO's sequence ratio) cannot use it: use <see cref="Fused"/>.
    /// </summary>
    /// <param name="loss">the loss of a row range; called once per chunk, under autograd, with leaves that require grad.</param>
    /// <param name="rowChunk">rows per chunk, ≥ 1; null: <see cref="DefaultRowChunk"/>. Extra memory: two [rowChunk, |V|] buffers.</param>
    /// <returns>the loss (0-dim, differentiable w.r.t. h and W) and every row's outputs, detached, for metrics.</returns>
    public static (Tensor Loss, TokenHeadOutputs Outputs) FusedLoss(Tensor hidden, Tensor weight, Tensor targets, TokenLocalLoss loss, Tensor? q = null,
        double temperature = 1.0, int? rowChunk = null)
    {
        Validate(hidden, weight, targets, q, temperature, 0);
        int rows = rowChunk ?? DefaultRowChunk(weight.shape[0]);
        if (rows < 1) throw new ArgumentException($"rowChunk must be ≥ 1, got {rows}.");
        if (hidden.shape[0] == 0) throw new ArgumentException("FusedLoss needs at least one token.");
        var call = new FusedLossCall { Targets = targets, Q = q, Temperature = temperature, Loss = loss, RowChunk = rows };
        Tensor h = Alias(hidden), w = Alias(weight);
        // Every other handle apply leaves (the forward's raw output, ∂h and ∂W as .NET objects, TorchSharp's output cache)
        // is disposed here, not left to the finalizer: the raw output shares the result's grad_fn, so while it lived the
        // graph, with its saved ∂W [|V|, H], lived too, and the GC, seeing only small objects, seldom ran: a word-problems
        // cold start grew by one ∂W (39 MB) per step, 13 GB by step 330. The saved variables hold their own references.
        Tensor result;
        using (var applyScope = NewDisposeScope())
        {
            result = FusedLinearLossFunction.apply(h, w, call)[0];
            result.MoveToOuterDisposeScope();
            call.Outputs!.MoveToOuterDisposeScope();
        }
        return (result, call.Outputs!);
    }

    /// <summary>The reference: logits = h·Wᵀ / T [N, |V|], log_softmax, gathers, entropy −Σ π log π (all through autograd).</summary>
    public static TokenHeadOutputs Unfused(Tensor hidden, Tensor weight, Tensor targets, Tensor? q = null, double temperature = 1.0, int topK = 0)
    {
        Validate(hidden, weight, targets, q, temperature, topK);
        var logits = hidden.mm(weight.t());
        if (temperature != 1.0) logits = logits / temperature;
        var logp = logits.log_softmax(-1);
        Tensor? top = null;
        if (topK > 0)
            using (no_grad()) top = logp.topk(topK, dim: -1).indexes;
        return new TokenHeadOutputs
        {
            LogpTarget = logp.gather(1, targets.unsqueeze(1)).squeeze(1),
            LogZ = logits.logsumexp(-1),
            Entropy = -(logp.exp() * logp).sum(-1),
            LogpQ = q is null ? null : logp.gather(1, q),
            TopKIndices = top,
            TopKLogp = top is null ? null : logp.gather(1, top),
        };
    }

    /// <summary>A differentiable alias (a view; a contiguous copy when a view of that shape is impossible).</summary>
    private static Tensor Alias(Tensor t) => t.is_contiguous() ? t.view(t.shape) : t.contiguous();

    private static void Validate(Tensor h, Tensor w, Tensor targets, Tensor? q, double temperature, int topK)
    {
        if (h.dim() != 2 || w.dim() != 2 || h.shape[1] != w.shape[1])
            throw new ArgumentException($"hidden must be [N, H] and weight [|V|, H] with the same H, got [{string.Join(", ", h.shape)}] and [{string.Join(", ", w.shape)}].");
        if (h.dtype != w.dtype || (h.dtype != ScalarType.Float32 && h.dtype != ScalarType.Float64))
            throw new ArgumentException($"hidden and weight must both be float32 or both float64, got {h.dtype} and {w.dtype}.");
        long n = h.shape[0], v = w.shape[0];
        if (v < 1) throw new ArgumentException("weight must have at least one vocabulary row.");
        if (targets.dtype != ScalarType.Int64 || targets.dim() != 1 || targets.shape[0] != n)
            throw new ArgumentException($"targets must be [N] = [{n}] int64, got [{string.Join(", ", targets.shape)}] {targets.dtype}.");
        InRange(targets, v, nameof(targets));
        if (q is not null)
        {
            if (q.dtype != ScalarType.Int64 || q.dim() != 2 || q.shape[0] != n)
                throw new ArgumentException($"q must be [N, k] = [{n}, k] int64, got [{string.Join(", ", q.shape)}] {q.dtype}.");
            InRange(q, v, nameof(q));
        }
        if (!(temperature > 0) || double.IsInfinity(temperature)) throw new ArgumentException($"temperature must be finite and > 0, got {temperature}.");
        if (topK < 0 || topK > v) throw new ArgumentException($"topK must be in [0, {v}], got {topK}.");
    }

    private static void InRange(Tensor idx, long v, string name)
    {
        if (idx.numel() == 0) return;
        using var _ = NewDisposeScope();
        long lo = idx.min().item<long>(), hi = idx.max().item<long>();
        if (lo < 0 || hi >= v) throw new ArgumentException($"{name} must hold indices in [0, {v - 1}], got values in [{lo}, {hi}].");
    }
}

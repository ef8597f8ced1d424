using EmaPg.Common;
using EmaPg.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Sampling;

/// <summary>Batched autoregressive sampling with a KV cache.</summary>
public static class Sampler
{
    /// <summary>
    /// Samples one response per prompt. Prompts are token ids (typically starting with BOS), packed
    /// with left padding (<see cref="PromptBatch.LeftPad"/>). Runs under no_grad. Reproducible for a
    /// given <paramref name="generator"/> state, batch composition and device; the global RNG is used
    /// when no generator is given.
    /// </summary>
    public static GenerationResult Generate(CausalLM model, IReadOnlyList<int[]> prompts, SamplingOptions options, Generator? generator = null)
    {
        options.Validate(model.Config.VocabSize);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var device = model.Device;
        var (promptIds, promptMask) = PromptBatch.LeftPad(prompts, options.PadToken, device);
        long b = promptIds.shape[0];
        int lp = (int)promptIds.shape[1];
        int capacity = lp + options.MaxNewTokens;
        if (capacity > model.Config.MaxPositionEmbeddings)
            throw new UserError($"prompt length {lp} + max new tokens {options.MaxNewTokens} exceeds max_position_embeddings {model.Config.MaxPositionEmbeddings}.");

        using var cache = model.CreateCache(b, capacity);
        // One mask for the whole run; each forward sees the prefix covering cached + new positions.
        var fullMask = ones([b, capacity], dtype: ScalarType.Int64, device: device);
        fullMask.narrow(1, 0, lp).copy_(promptMask);
        var stopIds = tensor(options.StopTokens.Select(t => (long)t).ToArray(), dtype: ScalarType.Int64, device: device);
        var pad = full([b], options.PadToken, dtype: ScalarType.Int64, device: device);

        var logits = model.LastLogits(promptIds, fullMask.narrow(1, 0, lp), cache); // [B,V]
        var finished = zeros([b], dtype: ScalarType.Bool, device: device);
        var tokens = new List<Tensor>();
        var logps = new List<Tensor>();
        var masks = new List<Tensor>();
        var topks = new List<Tensor>();
        var generated = options.StopWhen is null ? null : Enumerable.Range(0, (int)b).Select(_ => new List<int>()).ToArray();
        var topkValues = new List<Tensor>();

        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            using var stepScope = NewDisposeScope();
            var (tok, tokLogp, topValues, topIndices) = Step(logits, options, generator, step);
            var active = finished.logical_not();
            tok = where(active, tok, pad);
            tokLogp = where(active, tokLogp, zeros_like(tokLogp));
            tokens.Add(tok.MoveToOuterDisposeScope());
            logps.Add(tokLogp.to_type(ScalarType.Float32).MoveToOuterDisposeScope());
            masks.Add(active.to_type(ScalarType.Float32).MoveToOuterDisposeScope());
            if (options.ReturnTopK > 0)
            {
                topks.Add(topIndices!.MoveToOuterDisposeScope());
                topkValues.Add(topValues!.to_type(ScalarType.Float32).MoveToOuterDisposeScope());
            }
            if (stopIds.numel() > 0)
                finished = (finished | (isin(tok, stopIds) & active)).MoveToOuterDisposeScope();
            if (generated is not null)
                finished = (finished | StopWhen(options.StopWhen!, generated, tok, active)).MoveToOuterDisposeScope();
            if (step + 1 == options.MaxNewTokens || finished.all().item<bool>())
                break;
            var next = model.LastLogits(tok.unsqueeze(1), fullMask.narrow(1, 0, lp + step + 1), cache).MoveToOuterDisposeScope();
            // Only the current step's [B, |V|] logits may live: kept until Generate returns, every step's would add up
            // (64 steps × 256 rows × 151936 columns = 10 GB).
            logits.Dispose();
            logits = next;
        }

        var responseIds = stack(tokens, 1);
        var responseMask = stack(masks, 1);
        var logProbs = stack(logps, 1);
        var topKIndices = options.ReturnTopK > 0 ? stack(topks, 1) : null;
        var topKLogProbs = options.ReturnTopK > 0 ? stack(topkValues, 1) : null;

        var lengths = responseMask.sum(1).to_type(ScalarType.Int64).cpu().data<long>().ToArray();
        var flat = responseIds.cpu().data<long>().ToArray();
        int width = (int)responseIds.shape[1];
        var responseTokens = new int[b][];
        var stopped = new bool[b];
        var stopSet = options.StopTokens.ToHashSet();
        for (int i = 0; i < b; i++)
        {
            responseTokens[i] = new int[lengths[i]];
            for (int j = 0; j < lengths[i]; j++) responseTokens[i][j] = (int)flat[i * width + j];
            stopped[i] = lengths[i] > 0 && (stopSet.Contains(responseTokens[i][^1]) || options.StopWhen?.Invoke(responseTokens[i]) == true);
        }

        return new GenerationResult(
            promptIds.MoveToOuterDisposeScope(), promptMask.MoveToOuterDisposeScope(),
            responseIds.MoveToOuterDisposeScope(), responseMask.MoveToOuterDisposeScope(),
            logProbs.MoveToOuterDisposeScope(), topKIndices?.MoveToOuterDisposeScope(),
            responseTokens, stopped, topKLogProbs?.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// One decoding step from the next-token logits [B, V]: the token, its log-prob under the distribution sampled from,
    /// and the top-k of those log-probs when asked. Large vocabularies without filters take a leaner route with the same
    /// distribution: one max, one in-place exp and a two-level inverse CDF over [B, V] give the draw and log Z together,
    /// without a log_softmax table; that route overwrites <paramref name="logits"/>, which the caller does not read again.
    /// </summary>
    private static (Tensor Tok, Tensor TokLogp, Tensor? TopValues, Tensor? TopIndices) Step(Tensor logits, SamplingOptions options, Generator? generator, int step)
    {
        long v = logits.shape[^1];
        if (v < InverseCdfFromVocab || options.FilterTopK > 0 || options.FilterTopP < 1.0)
        {
            var logp = SamplingLogProbs(logits, options);
            // A diverged policy gives NaN or ±∞ logits; multinomial would fail deep inside libtorch.
            var probs = logp.exp();   // one [B,V] pass for both the check and the draw
            var mass = probs.sum(-1);
            if (!(mass.isfinite() & mass.gt(0)).all().item<bool>()) throw NotFinite(step);
            var tok = options.Greedy ? logp.argmax(-1) : Draw(probs, generator);
            var tokLogp = logp.gather(-1, tok.unsqueeze(-1)).squeeze(-1);
            if (options.ReturnTopK == 0) return (tok, tokLogp, null, null);
            var (values, indexes) = logp.topk(options.ReturnTopK, dim: -1);
            return (tok, tokLogp, values, indexes);
        }
        // One max per row: the shifted logits (z − max) / T are ≤ 0, so log Z is just log Σ e^{shifted}. The step's logits
        // are not read again, so the table becomes the weights in place (a fresh [B, |V|] table per pass cost page faults);
        // the top-k is taken from the raw logits first, and the token's log-prob from its weight.
        Tensor? topRaw = null, topIdx = null;
        if (options.ReturnTopK > 0) (topRaw, topIdx) = BlockTopK(logits, options.ReturnTopK);
        // The top-k comes sorted, so its first value is the row max: no second pass over [B, |V|] for it.
        var max = topRaw is null ? logits.amax([-1], keepdim: true) : topRaw.narrow(-1, 0, 1);
        var weights = logits.sub_(max);
        if (options.Temperature != 1.0) weights.div_(options.Temperature);
        weights.exp_();
        var (token, total) = DrawTwoLevel(weights, generator, options.Greedy);
        if (!(total.isfinite() & total.gt(0)).all().item<bool>()) throw NotFinite(step);
        var logZ = total.log();
        // A drawn token has positive weight, so its log is finite; log(e^x) differs from x by float32 rounding of exp alone.
        var tokenLogp = (weights.gather(-1, token.unsqueeze(-1)).to_type(ScalarType.Float64).log() - logZ).squeeze(-1).to_type(logits.dtype);
        if (options.ReturnTopK == 0) return (token, tokenLogp, null, null);
        var topShifted = topRaw! - max;
        if (options.Temperature != 1.0) topShifted.div_(options.Temperature);
        return (token, tokenLogp, topShifted - logZ.to_type(logits.dtype), topIdx);
    }

    /// <summary>
    /// torch.topk of rows [B, V] through ⌈√V⌉-column blocks: every element of a row's top k lies in one of the k blocks with
    /// the largest maxima (a block outside them has k blocks, hence k elements, at least as large), so only those k blocks'
    /// columns are ranked. Ties between equal logits may resolve to other indices than a full topk's.
    /// </summary>
    internal static (Tensor Values, Tensor Indices) BlockTopK(Tensor x, int k)
    {
        long b = x.shape[0], v = x.shape[^1];
        long width = (long)Math.Ceiling(Math.Sqrt(v)), full = v / width, rest = v - full * width, blocks = full + (rest > 0 ? 1 : 0);
        if (k > width || k * width * 2 > v)
        {
            var (values, indices) = x.topk(k, dim: -1);
            return (values, indices);
        }
        using var scope = NewDisposeScope();
        var blockMax = x.narrow(-1, 0, full * width).view(b, full, width).amax([-1]);
        if (rest > 0) blockMax = cat([blockMax, x.narrow(-1, full * width, rest).amax([-1], keepdim: true)], -1);
        var top = blockMax.topk((int)Math.Min(k, blocks), dim: -1).indexes;                                   // [B, k]
        var columns = (top.unsqueeze(-1) * width + arange(width, dtype: ScalarType.Int64, device: x.device)).view(b, -1);
        var inside = columns.lt(v);
        var candidates = x.gather(-1, columns.clamp_max(v - 1)).masked_fill(inside.logical_not(), double.NegativeInfinity);
        var (vals, at) = candidates.topk(k, dim: -1);
        return (vals.MoveToOuterDisposeScope(), columns.gather(-1, at).MoveToOuterDisposeScope());
    }

    private static NonFiniteOutputError NotFinite(int step) =>
        new($"the policy's next-token distribution at generation step {step + 1} is not finite (NaN or ±∞ logits).");

    /// <summary>
    /// From this many columns on, tokens are drawn by inverse CDF instead of torch.multinomial. Both draw exactly from the
    /// distribution, but multinomial draws an exponential variate per column (measured: ≈ 0.6 s per step for 64 rows of
    /// 151936 on this CPU, most of a rollout), inverse CDF one uniform per row. Small vocabularies keep multinomial, so the
    /// embedded arithmetic job's draws, and its quoted results, stay as they were.
    /// </summary>
    internal const int InverseCdfFromVocab = 4096;

    /// <summary>One token per row of <paramref name="probs"/> [B, V] (unnormalised is fine), sampled exactly.</summary>
    internal static Tensor Draw(Tensor probs, Generator? generator)
    {
        long v = probs.shape[^1];
        if (v < InverseCdfFromVocab) return multinomial(probs, 1, generator: generator).squeeze(-1);
        using var scope = NewDisposeScope();
        return DrawTwoLevel(probs, generator).Token.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Inverse-CDF draw in two levels, exact: a block of ⌈√V⌉ columns with probability ∝ its mass, then a column of that
    /// block ∝ its weight. Only [B, V/⌈√V⌉] block masses and one [B, ⌈√V⌉] block per row are cumulated, in float64
    /// (float32 partial sums over 10^5 columns would misplace tokens of probability ≈ 1e-6); a float64 CDF of the whole
    /// [B, V] table was most of a decoding step at |V| = 151936. Returns the token [B] (the argmax when
    /// <paramref name="greedy"/>) and the row totals Σ weights [B, 1] in float64.
    /// </summary>
    private static (Tensor Token, Tensor Total) DrawTwoLevel(Tensor weights, Generator? generator, bool greedy = false)
    {
        long b = weights.shape[0], v = weights.shape[^1];
        long width = (long)Math.Ceiling(Math.Sqrt(v)), full = v / width, rest = v - full * width, blocks = full + (rest > 0 ? 1 : 0);
        // Each block is summed in float32 (≤ ⌈√V⌉ terms, pairwise: relative error ~1e-7, the order of float32 logits' own
        // rounding) and only the block masses are cumulated in float64; summing every column in float64 cost ≈ 14 ms a step.
        // (A 16-bit model's weights are summed in float32 all the same.)
        var sumType = weights.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var mass = weights.narrow(-1, 0, full * width).view(b, full, width).sum(-1, type: sumType).to_type(ScalarType.Float64);
        if (rest > 0) mass = cat([mass, weights.narrow(-1, full * width, rest).sum(-1, keepdim: true, type: sumType).to_type(ScalarType.Float64)], -1);
        var blockCdf = mass.cumsum(-1);
        var total = blockCdf.narrow(-1, blocks - 1, 1);
        if (greedy) return (weights.argmax(-1), total);
        var u = rand([b, 1], dtype: ScalarType.Float64, device: weights.device, generator: generator) * total;
        // The first block whose CDF exceeds u, hence one of positive mass.
        var block = searchsorted(blockCdf, u, right: true).clamp_max(blocks - 1);                   // [B, 1]
        var before = blockCdf.gather(-1, (block - 1).clamp_min(0)) * block.gt(0);
        var columns = block * width + arange(width, dtype: ScalarType.Int64, device: weights.device);  // [B, width]
        var inside = columns.lt(v);
        var w = weights.gather(-1, columns.clamp_max(v - 1)).to_type(ScalarType.Float64) * inside;
        var cdf = w.cumsum(-1);
        // u's offset in the block, rescaled to this CDF's own total (the block's sum and cumsum round differently).
        var within = (u - before).clamp_min(0) / mass.gather(-1, block) * cdf.narrow(-1, width - 1, 1);
        var pick = searchsorted(cdf, within, right: true);
        // Rounding may put `within` at the block's total: fall back to its last column of positive weight, never a zero one.
        var lastPositive = (w.gt(0) * arange(1, width + 1, dtype: ScalarType.Int64, device: weights.device)).amax([-1], keepdim: true) - 1;
        return ((block * width + torch.minimum(pick, lastPositive)).squeeze(-1), total);
    }

    /// <summary>Appends this step's tokens of the active rows to <paramref name="generated"/> and returns [B] bool: rows whose tokens now meet the criterion.</summary>
    private static Tensor StopWhen(Func<IReadOnlyList<int>, bool> criterion, List<int>[] generated, Tensor tok, Tensor active)
    {
        var toks = tok.cpu().data<long>().ToArray();
        var act = active.cpu().data<bool>().ToArray();
        var hit = new bool[toks.Length];
        for (int i = 0; i < toks.Length; i++)
        {
            if (!act[i]) continue;
            generated[i].Add((int)toks[i]);
            hit[i] = criterion(generated[i]);
        }
        return tensor(hit, device: tok.device);
    }

    /// <summary>
    /// Log-probs [.., V] of the distribution actually sampled from: logits / temperature, then the
    /// optional top-k and top-p filters (filtered tokens get −∞), then log_softmax.
    /// </summary>
    public static Tensor SamplingLogProbs(Tensor logits, SamplingOptions options)
    {
        using var scope = NewDisposeScope();
        // Shifting by the max first keeps a tiny temperature from overflowing float32 (x / 1e-40 = ∞, and ∞ − ∞ = NaN):
        // the shifted logits are ≤ 0, so they divide to 0 or −∞ at worst. At T = 1 nothing is scaled.
        var scaled = options.Temperature == 1.0 ? logits : (logits - logits.amax([-1], keepdim: true)) / options.Temperature;
        if (options.FilterTopK > 0 && options.FilterTopK < scaled.shape[^1])
        {
            var kth = scaled.topk(options.FilterTopK, dim: -1).values.narrow(-1, options.FilterTopK - 1, 1);
            scaled = scaled.masked_fill(scaled.lt(kth), double.NegativeInfinity);
        }
        if (options.FilterTopP < 1.0)
        {
            var (sorted, order) = scaled.sort(-1, descending: true);
            var probs = sorted.softmax(-1);
            // Drop a token when the mass strictly before it already reaches p; the top token always stays.
            var drop = (probs.cumsum(-1) - probs).ge(options.FilterTopP);
            var dropOriginal = zeros_like(drop).scatter(-1, order, drop);
            scaled = scaled.masked_fill(dropOriginal, double.NegativeInfinity);
        }
        return scaled.log_softmax(-1).MoveToOuterDisposeScope();
    }
}

/// <summary>The model produced NaN or ±∞ where a distribution was needed: a diverged policy, not a user error.</summary>
public sealed class NonFiniteOutputError(string message) : ArithmeticException(message);

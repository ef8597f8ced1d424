using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace EmaPg.Heads;

/// <summary>
/// The custom autograd function behind <see cref="TokenHead.Fused"/>. Inputs (in order): h [N,H], W [V,H],
/// targets [N], q [N,k] or null, temperature, k', chunk size. Outputs: log π(target) [N], log Z [N], entropy [N],
/// log π(q) [N,k], top-k' indices [N,k'] (not differentiable), log π(top-k') [N,k'].
/// <para>
/// Forward walks the vocabulary in chunks of columns z_c = h·W_cᵀ / T with an online log-sum-exp: a running
/// max m, s = Σ e^{z−m} and t = Σ e^{z−m}(z−m), rescaled by e^{m_old − m_new} when the max grows, so that
/// log Z = m + log s and H = log s − t/s (H = log Z − E_π[z]); gathers and the running top-k' are taken chunk
/// by chunk. It saves only h, W (inputs, no copy), the indices and log Z, H ([N]).
/// </para>
/// <para>
/// Backward recomputes each chunk's logits instead of storing them (one more GEMM, no [N,V] tensor) and forms
/// ∂L/∂z_c = π_c·(a − g_H·(log π_c + H)) + scatter(g at the gathered indices in this chunk), a = g_Z − g_t − Σg_q − Σg_top,
/// from ∂log π_j/∂z = onehot(j) − π, ∂H/∂z = −π(log π + H), ∂log Z/∂z = π; then ∂h += (∂z_c / T)·W_c and
/// ∂W_c = (∂z_c / T)ᵀ·h, written straight into its rows of ∂W.
/// </para>
/// </summary>
internal sealed class FusedTokenHeadFunction : MultiTensorFunction<FusedTokenHeadFunction>
{
    public override string Name => "FusedTokenHead";

    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var h = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        var targets = (Tensor)vars[2];
        var q = vars[3] as Tensor;
        double temperature = (double)vars[4];
        int topK = (int)vars[5], chunk = (int)vars[6];
        long n = h.shape[0], v = w.shape[0];

        using var scope = NewDisposeScope();
        var opts = (dtype: h.dtype, device: h.device);
        var target2 = targets.unsqueeze(1);
        var qq = q ?? empty(n, 0, dtype: ScalarType.Int64, device: h.device);
        Tensor m = empty(n, 1, opts.dtype, opts.device), s = zeros(n, 1, opts.dtype, opts.device), t = zeros(n, 1, opts.dtype, opts.device);
        var zt = zeros(n, 1, opts.dtype, opts.device);
        var zq = zeros(n, qq.shape[1], opts.dtype, opts.device);
        var topVal = full(n, topK, double.NegativeInfinity, opts.dtype, opts.device);
        var topIdx = zeros(n, topK, ScalarType.Int64, device: opts.device);

        var (zBuf, eBuf) = ChunkBuffers(n, Math.Min(chunk, v), opts.dtype, opts.device);
        for (long start = 0; start < v; start += chunk)
        {
            using var inner = NewDisposeScope();
            long c = Math.Min(chunk, v - start);
            var z = Logits(h, w, start, c, temperature, zBuf);
            GatherInChunk(z, target2, start, zt);
            GatherInChunk(z, qq, start, zq);
            if (topK > 0) MergeTopK(z, start, topVal, topIdx);

            var mc = z.amax([1], keepdim: true);
            if (start == 0)
            {
                m.copy_(mc);
            }
            else
            {
                // Rescale the running sums to the new max: e^{z−m'} = e^{m−m'}·e^{z−m}, (z−m') = (z−m) + (m−m').
                var mNew = maximum(m, mc);
                var shift = m - mNew;                       // ≤ 0
                var scale = shift.exp();
                t.add_(s * shift).mul_(scale);
                s.mul_(scale);
                m.copy_(mNew);
            }
            var zs = z.sub_(m);                              // z − m, in place: z is not needed any more
            var e = eBuf.narrow(1, 0, c).copy_(zs).exp_();
            s.add_(e.sum(1, keepdim: true));
            t.add_(e.mul_(zs).sum(1, keepdim: true));
        }

        var logS = s.log();
        var logZ = (m + logS).squeeze(1);
        var entropy = (logS - t / s).squeeze(1);
        var logZ2 = logZ.unsqueeze(1);
        var outputs = new List<Tensor>
        {
            (zt - logZ2).squeeze(1),
            logZ,
            entropy,
            zq - logZ2,
            topIdx,
            topVal - logZ2,
        };
        // Saved copies, never the outputs themselves: saving an output would tie its grad_fn to this node in a cycle.
        // They must outlive this scope: the node turns them into saved variables only after forward returns.
        var keep = new[] { topIdx.clone(), logZ.clone(), entropy.clone() };
        foreach (var k in keep) k.MoveToOuterDisposeScope();
        ctx.save_for_backward([h, w, targets, q!, .. keep]);
        ctx.save_data("temperature", temperature);
        ctx.save_data("chunk", chunk);
        ctx.save_data("needH", h.requires_grad);
        ctx.save_data("needW", w.requires_grad);
        ctx.mark_non_differentiable([topIdx]);
        // Outputs the loss did not read arrive in backward undefined and are taken as zero there, so TorchSharp never reads
        // its cache of the outputs and TokenHead.Fused may dispose every handle apply leaves behind.
        ctx.set_materialize_grads(false);
        foreach (var o in outputs) o.MoveToOuterDisposeScope();
        return outputs;
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grads)
    {
        var saved = ctx.get_saved_variables();
        Tensor h = saved[0], w = saved[1], targets = saved[2], topIdx = saved[4], logZ = saved[5], entropy = saved[6];
        Tensor? q = saved[3];
        double temperature = (double)ctx.get_data("temperature");
        int chunk = (int)ctx.get_data("chunk");
        bool needH = (bool)ctx.get_data("needH"), needW = (bool)ctx.get_data("needW");
        long n = h.shape[0], v = w.shape[0];

        Tensor? dh = needH ? zeros_like(h) : null;
        Tensor? dw = needW ? empty_like(w) : null;
        using (var scope = NewDisposeScope())
        {
            Tensor Grad(int i, long width) =>
                grads[i] is { IsInvalid: false } g ? g : width < 0 ? zeros(n, h.dtype, h.device) : zeros(n, width, h.dtype, h.device);
            var gT = Grad(0, -1).unsqueeze(1);
            var gZ = Grad(1, -1).unsqueeze(1);
            var gH = Grad(2, -1).unsqueeze(1);
            var gQ = Grad(3, q?.shape[1] ?? 0);
            var gTop = Grad(5, topIdx.shape[1]);
            // Every log π_j = z_j − log Z contributes −g_j·π to ∂L/∂z through log Z; log Z itself contributes +g_Z·π.
            var a = gZ - gT;
            if (gQ.numel() > 0) a = a - gQ.sum(1, keepdim: true);
            if (gTop.numel() > 0) a = a - gTop.sum(1, keepdim: true);
            var logZ2 = logZ.unsqueeze(1);
            var coef = a - gH * entropy.unsqueeze(1);
            var negGH = -gH;
            var target2 = targets.unsqueeze(1);

            var (zBuf, pBuf) = ChunkBuffers(n, Math.Min(chunk, v), h.dtype, h.device);
            for (long start = 0; start < v; start += chunk)
            {
                using var inner = NewDisposeScope();
                long c = Math.Min(chunk, v - start);
                var logp = Logits(h, w, start, c, temperature, zBuf).sub_(logZ2);
                var p = pBuf.narrow(1, 0, c).copy_(logp).exp_();
                var dz = logp.mul_(negGH).add_(coef).mul_(p);   // π·(a − g_H·(log π + H)) = π·(coef − g_H·log π)
                ScatterInChunk(dz, target2, gT, start);
                if (q is not null) ScatterInChunk(dz, q, gQ, start);
                ScatterInChunk(dz, topIdx, gTop, start);
                // ∂L/∂(h·W_cᵀ) = ∂L/∂z / T. (Not through the GEMMs' alpha: TorchSharp takes it as float, which would round 1/T in float64.)
                if (temperature != 1.0) dz.div_(temperature);
                var wc = w.narrow(0, start, c);
                dh?.addmm_(dz, wc);
                dw?.narrow(0, start, c).addmm_(dz.t(), h, beta: 0);
            }
        }
        foreach (var t in saved) t?.Dispose();
        return [dh!, dw!, null!, null!, null!, null!, null!];
    }

    /// <summary>
    /// The two [N, chunk] work buffers, allocated once per pass and reused by every chunk: with a fresh 16–64 MiB
    /// tensor per chunk, glibc serves them from its heap once its dynamic mmap threshold has grown, and the freed
    /// blocks stay resident (measured: one block per chunk, ≈ an [N, |V|] tensor over the whole vocabulary).
    /// </summary>
    private static (Tensor, Tensor) ChunkBuffers(long n, long chunk, ScalarType dtype, Device device) =>
        (empty(n, chunk, dtype, device), empty(n, chunk, dtype, device));

    /// <summary>z_c = h·W[start : start+c]ᵀ / T, [N, c], written into the first c columns of <paramref name="buffer"/>.</summary>
    private static Tensor Logits(Tensor h, Tensor w, long start, long c, double temperature, Tensor buffer)
    {
        var z = buffer.narrow(1, 0, c).addmm_(h, w.narrow(0, start, c).t(), beta: 0);
        return temperature == 1.0 ? z : z.div_(temperature);
    }

    /// <summary>acc += z at the indices that fall in this chunk (each index falls in exactly one chunk).</summary>
    private static void GatherInChunk(Tensor z, Tensor idx, long start, Tensor acc)
    {
        if (idx.numel() == 0) return;
        using var _ = NewDisposeScope();
        long c = z.shape[1];
        var inChunk = idx.ge(start).logical_and(idx.lt(start + c));
        var local = (idx - start).clamp(0, c - 1);
        acc.add_(z.gather(1, local).masked_fill(inChunk.logical_not(), 0.0));
    }

    /// <summary>dz[i, idx − start] += g at the indices that fall in this chunk.</summary>
    private static void ScatterInChunk(Tensor dz, Tensor idx, Tensor g, long start)
    {
        if (idx.numel() == 0) return;
        using var _ = NewDisposeScope();
        long c = dz.shape[1];
        var inChunk = idx.ge(start).logical_and(idx.lt(start + c));
        var local = (idx - start).clamp(0, c - 1);
        dz.scatter_add_(1, local, g.masked_fill(inChunk.logical_not(), 0.0));
    }

    /// <summary>Merges this chunk's top-k' into the running top-k' (values and global indices, largest first).</summary>
    private static void MergeTopK(Tensor z, long start, Tensor topVal, Tensor topIdx)
    {
        using var _ = NewDisposeScope();
        int k = (int)topVal.shape[1];
        int kc = (int)Math.Min(k, z.shape[1]);
        var (vals, idx) = z.topk(kc, dim: 1);
        var allVals = cat([topVal, vals], 1);
        var allIdx = cat([topIdx, idx + start], 1);
        var (best, pos) = allVals.topk(k, dim: 1);
        topIdx.copy_(allIdx.gather(1, pos));
        topVal.copy_(best);
    }
}

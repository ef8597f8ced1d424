using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace EmaPg.Heads;

/// <summary>
/// The custom autograd function behind <see cref="TokenHead.FusedLoss"/>: a token-local loss straight from h [N,H] and
/// W [V,H] in three GEMMs, as Liger-Kernel's fused linear losses do. Inputs: h, W, the <see cref="FusedLossCall"/>.
/// Output: the loss, a 0-dim tensor.
/// <para>
/// Forward walks the tokens in row chunks r. Per chunk: z_r = h_r·Wᵀ / T [r,V] (GEMM 1), log π and π over the whole row,
/// the per-token outputs; the caller's loss of those rows (a small autograd graph over O(r·k) leaves) gives
/// g = ∂L/∂outputs; then ∂L/∂z_r = π·(a − g_H·(log π + H)) + scatter(g at the gathered indices) (see
/// <see cref="FusedTokenHeadFunction"/> for the derivation), ∂h_r = (∂z_r / T)·W (GEMM 2) and ∂W += (∂z_r / T)ᵀ·h_r (GEMM 3).
/// The gradients are kept until backward, which scales them by the incoming gradient of the loss. Because the loss is
/// token-local, one pass suffices: no chunk's logits are ever recomputed, and no [N,V] tensor exists.
/// </para>
/// </summary>
internal sealed class FusedLinearLossFunction : MultiTensorFunction<FusedLinearLossFunction>
{
    public override string Name => "FusedLinearLoss";

    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var h = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        var call = (FusedLossCall)vars[2];
        bool needH = h.requires_grad, needW = w.requires_grad;
        long n = h.shape[0], v = w.shape[0];
        var opts = (dtype: h.dtype, device: h.device);
        Tensor? dh = needH ? empty_like(h) : null;
        Tensor? dw = needW ? zeros_like(w) : null;
        Tensor loss;
        using (var scope = NewDisposeScope())
        {
            var total = zeros([], opts.dtype, opts.device);
            int rows = (int)Math.Min(call.RowChunk, n);
            var zBuf = empty(rows, v, opts.dtype, opts.device);
            var pBuf = empty(rows, v, opts.dtype, opts.device);
            var parts = new List<TokenHeadOutputs>();
            for (long start = 0; start < n; start += rows)
            {
                using var inner = NewDisposeScope();
                long r = Math.Min(rows, n - start);
                var hr = h.narrow(0, start, r);
                var targets = call.Targets.narrow(0, start, r).unsqueeze(1);
                var q = call.Q?.narrow(0, start, r);

                // log π = z − log Z with an explicit max shift (logsumexp would allocate an [r,V] temporary per chunk).
                var logp = zBuf.narrow(0, 0, r).addmm_(hr, w.t(), beta: 0);
                if (call.Temperature != 1.0) logp.div_(call.Temperature);
                var m = logp.amax([1], keepdim: true);
                logp.sub_(m);
                var p = pBuf.narrow(0, 0, r).copy_(logp).exp_();
                var s = p.sum(1, keepdim: true);
                var logS = s.log();
                logp.sub_(logS);
                p.div_(s);
                // H = −Σ π log π as a batched dot product: no [r,V] product tensor.
                var entropy = -p.unsqueeze(1).bmm(logp.unsqueeze(2)).reshape(r);
                var logZ = (m + logS).reshape(r);

                var rowsOut = new TokenHeadOutputs
                {
                    LogpTarget = logp.gather(1, targets).squeeze(1).detach().requires_grad_(true),
                    LogZ = logZ.detach().requires_grad_(true),
                    Entropy = entropy.detach().requires_grad_(true),
                    LogpQ = q is null ? null : logp.gather(1, q).detach().requires_grad_(true),
                };
                Tensor gT, gZ, gH, gQ;
                using (enable_grad())
                {
                    var part = call.Loss(rowsOut, start, r);
                    if (part.numel() != 1) throw new ArgumentException($"The fused loss's callback must return a scalar, got [{string.Join(", ", part.shape)}].");
                    total.add_(part.detach().reshape([]));
                    var leaves = new List<Tensor> { rowsOut.LogpTarget, rowsOut.LogZ, rowsOut.Entropy };
                    if (rowsOut.LogpQ is not null) leaves.Add(rowsOut.LogpQ);
                    // Every leaf enters with weight 0 so that each gets a (possibly zero) gradient: a loss need not read all outputs.
                    var scalar = part.reshape([]);
                    foreach (var leaf in leaves) scalar = scalar + leaf.sum() * 0.0;
                    var grads = grad([scalar], leaves);
                    gT = grads[0].unsqueeze(1);
                    gZ = grads[1].unsqueeze(1);
                    gH = grads[2].unsqueeze(1);
                    gQ = rowsOut.LogpQ is null ? empty(r, 0, opts.dtype, opts.device) : grads[3];
                }
                var kept = new TokenHeadOutputs
                {
                    LogpTarget = rowsOut.LogpTarget.detach(),
                    LogZ = rowsOut.LogZ.detach(),
                    Entropy = rowsOut.Entropy.detach(),
                    LogpQ = rowsOut.LogpQ?.detach(),
                };
                parts.Add(kept.MoveToOuterDisposeScope());
                if (!needH && !needW) continue;

                // ∂L/∂z = π·(a − g_H·(log π + H)) + scatter(g_target, g_q), a = g_Z − g_target − Σ g_q.
                var a = gZ - gT;
                if (gQ.numel() > 0) a = a - gQ.sum(1, keepdim: true);
                var coef = a - gH * entropy.unsqueeze(1);
                var dz = logp.mul_(-gH).add_(coef).mul_(p);
                dz.scatter_add_(1, targets, gT);
                if (q is not null && q.shape[1] > 0) dz.scatter_add_(1, q, gQ);
                if (call.Temperature != 1.0) dz.div_(call.Temperature);
                dh?.narrow(0, start, r).addmm_(dz, w, beta: 0);
                dw?.addmm_(dz.t(), hr);
            }
            call.Outputs = Concat(parts);
            call.Outputs.MoveToOuterDisposeScope();
            loss = total.MoveToOuterDisposeScope();
        }
        // The gradients must outlive this call: the node turns saved tensors into saved variables after forward returns.
        ctx.save_for_backward([dh!, dw!]);
        // backward handles an undefined incoming gradient itself, so TorchSharp never reads its cache of the outputs and
        // TokenHead.FusedLoss may dispose every handle that apply leaves behind (see there).
        ctx.set_materialize_grads(false);
        ctx.save_data("needH", needH);
        ctx.save_data("needW", needW);
        return [loss];
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grads)
    {
        var saved = ctx.get_saved_variables();
        Tensor? dh = (bool)ctx.get_data("needH") ? saved[0] : null;
        Tensor? dw = (bool)ctx.get_data("needW") ? saved[1] : null;
        var g = grads[0];
        if (g is null || g.IsInvalid) return [null!, null!, null!];   // the loss did not reach the differentiated output
        // loss.backward() passes 1: the gradients are returned as they are, without another [V,H] tensor.
        bool one;
        using (NewDisposeScope()) one = g.eq(1).all().item<bool>();
        if (!one)
        {
            dh?.mul_(g);
            dw?.mul_(g);
        }
        return [dh!, dw!, null!];
    }

    private static TokenHeadOutputs Concat(List<TokenHeadOutputs> parts)
    {
        var first = parts[0];
        return new TokenHeadOutputs
        {
            LogpTarget = cat(parts.Select(p => p.LogpTarget).ToList(), 0),
            LogZ = cat(parts.Select(p => p.LogZ).ToList(), 0),
            Entropy = cat(parts.Select(p => p.Entropy).ToList(), 0),
            LogpQ = first.LogpQ is null ? null : cat(parts.Select(p => p.LogpQ!).ToList(), 0),
        };
    }
}

/// <summary>
/// A token-local loss of rows [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>) of the head's
/// outputs: the sum of those rows' weighted per-token losses, a scalar. It may read other per-token data at the same rows
/// (advantages, masks, the anchor's log-probs at q), but nothing that depends on the head's outputs at other rows:
/// <see cref="TokenHead.FusedLoss"/> calls it once per row chunk and adds the results.
/// </summary>
public delegate Tensor TokenLocalLoss(TokenHeadOutputs rows, long start, long count);

/// <summary>One call of <see cref="FusedLinearLossFunction"/>: its data, and where it leaves the per-token outputs.</summary>
internal sealed class FusedLossCall
{
    public required Tensor Targets { get; init; }
    public Tensor? Q { get; init; }
    public double Temperature { get; init; } = 1.0;
    public required TokenLocalLoss Loss { get; init; }
    public required long RowChunk { get; init; }
    /// <summary>Set by forward: the head's per-token outputs of all rows, detached.</summary>
    public TokenHeadOutputs? Outputs { get; set; }
}

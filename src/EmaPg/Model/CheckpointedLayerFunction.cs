using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace EmaPg.Model;

/// <summary>
/// Activation checkpointing of one decoder layer (what <c>torch.utils.checkpoint</c> does with <c>use_reentrant=True</c>).
/// Inputs (in order): the layer, x [B,T,hidden], cos, sin [B,1,T,D], allowed [B,1,T,S]. Output: the layer's output.
/// <para>
/// Forward runs the layer without recording a graph and saves only its input x (and the shared rotary tables and mask),
/// so a step keeps one [B,T,hidden] tensor per layer instead of every intermediate (q, k, v, attention, the SwiGLU
/// activations: ≈ 10× more). Backward runs the layer's forward again on a detached copy of x with autograd on and
/// back-propagates the incoming gradient through it: the layer's parameters receive their gradients directly (the
/// inner backward accumulates into <c>.grad</c>) and ∂L/∂x is returned to the layer below. The recomputation is
/// deterministic (the layers have no dropout), so the gradients are those of the plain forward.
/// </para>
/// </summary>
internal sealed class CheckpointedLayerFunction : MultiTensorFunction<CheckpointedLayerFunction>
{
    public override string Name => "CheckpointedDecoderLayer";

    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var layer = (Qwen2DecoderLayer)vars[0];
        Tensor x = (Tensor)vars[1], cos = (Tensor)vars[2], sin = (Tensor)vars[3], allowed = (Tensor)vars[4];
        var y = layer.Forward(x, cos, sin, allowed, cache: null);   // apply() runs forward with autograd off
        ctx.save_for_backward([x, cos, sin, allowed]);
        ctx.save_data("layer", layer);
        return [y];
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grads)
    {
        var saved = ctx.get_saved_variables();
        var layer = (Qwen2DecoderLayer)ctx.get_data("layer");
        Tensor dx;
        using (var scope = NewDisposeScope())
        using (enable_grad())
        {
            var x = saved[0].detach().requires_grad_(true);
            var y = layer.Forward(x, saved[1], saved[2], saved[3], cache: null);
            y.backward([grads[0]]);
            dx = x.grad!.detach().MoveToOuterDisposeScope();
        }
        foreach (var t in saved) t?.Dispose();
        return [null!, dx, null!, null!, null!];
    }
}

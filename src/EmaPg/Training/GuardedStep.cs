using EmaPg.Optim;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Training;

/// <summary>Outcome of <see cref="GuardedStep.Apply"/>: applied or skipped, and the pre-clip gradient norm.</summary>
public readonly record struct StepOutcome(bool Applied, double GradNorm);

/// <summary>
/// One optimiser step that is never applied when the loss or the gradient is not finite (the trainer counts
/// and reports such steps): zero grads, check the loss, backward, clip the global norm (whose value is also
/// the finiteness check of every gradient), step. A skipped step leaves parameters and optimiser state as they were.
/// </summary>
public static class GuardedStep
{
    public static StepOutcome Apply(Tensor loss, AdamW optimizer, double gradClip)
    {
        optimizer.ZeroGrad();
        if (!double.IsFinite(loss.to_type(ScalarType.Float64).item<double>())) return new StepOutcome(false, double.NaN);
        loss.backward();
        double norm = gradClip > 0 ? nn.utils.clip_grad_norm_(optimizer.Parameters, gradClip) : GradNorm(optimizer.Parameters);
        if (!double.IsFinite(norm))
        {
            optimizer.ZeroGrad();
            return new StepOutcome(false, norm);
        }
        optimizer.Step();
        return new StepOutcome(true, norm);
    }

    private static double GradNorm(IEnumerable<Tensor> parameters)
    {
        using var _ = NewDisposeScope();
        double sq = 0;
        foreach (var p in parameters) if (p.grad is not null) sq += p.grad.to_type(ScalarType.Float64).square().sum().item<double>();
        return Math.Sqrt(sq);
    }
}

/// <summary>Training produced non-finite parameters or outputs repeatedly, even after rolling back: the run stops here.</summary>
public sealed class RunDivergedError(string message) : Common.UserError(message);

/// <summary>Finiteness checks of what an update produced.</summary>
public static class FiniteCheck
{
    /// <summary>Whether every element of every tensor is finite (one host sync for all of them: it runs after every step).</summary>
    public static bool All(IEnumerable<Tensor> tensors)
    {
        using var _ = NewDisposeScope();
        var flags = tensors.Select(t => t.isfinite().all()).ToArray();
        return flags.Length == 0 || stack(flags).all().item<bool>();
    }
}

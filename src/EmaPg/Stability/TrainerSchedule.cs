namespace EmaPg.Stability;

/// <summary>
/// Stability boundaries for the trainer's schedule (Alg. 3), not §4's: S = T_ema·Λ·minibatches optimiser steps with the
/// anchor fixed, then θ_ema ← ηθ_ema + (1−η)θ after the update. Linearised per Fisher mode λ with m = αβλ, each step maps
/// the lag δ = θ − θ_ema to (1 − m)δ + αg and the anchor update maps it to ηδ, so one cycle multiplies it by η(1 − m)^S:
/// stable iff |1 − m| &lt; η^(−1/S), i.e. m &lt; 1 + η^(−1/S) (for S = 1: 1 + 1/η, against eq. 9's 1 + η for §4's order);
/// η = 0 (a hard reset every cycle) is stable for every m, η = 1 (a fixed reference) is gradient descent's m &lt; 2.
/// Steps overshoot (the lag flips sign from step to step) iff m &gt; 1. With an upper bound on λ_max, a bound below
/// 1 + η^(−1/S) guarantees stability, and a bound ≤ 1 guarantees no overshoot; neither says which regime the true m is in.
/// </summary>
public static class TrainerSchedule
{
    /// <summary>The step-level overshoot boundary m = 1.</summary>
    public const double OvershootBoundary = 1.0;

    /// <summary>1 + η^(−1/S): +∞ for η = 0.</summary>
    public static double UnstableBoundary(double eta, int stepsPerAnchorUpdate)
    {
        if (!(eta >= 0 && eta <= 1) || stepsPerAnchorUpdate < 1)
            throw new ArgumentException($"need η ∈ [0, 1] and S ≥ 1; got η = {eta}, S = {stepsPerAnchorUpdate}");
        return eta == 0 ? double.PositiveInfinity : 1 + Math.Pow(eta, -1.0 / stepsPerAnchorUpdate);
    }

    /// <summary>The regime of m = αβλ under the schedule: monotone (m ≤ 1), oscillatory (1 &lt; m &lt; 1 + η^(−1/S)), unstable.</summary>
    public static StabilityRegime Predict(double m, double eta, int stepsPerAnchorUpdate, double relTolerance = 1e-9) =>
        m <= OvershootBoundary * (1 + relTolerance) ? StabilityRegime.Monotone
        : m < UnstableBoundary(eta, stepsPerAnchorUpdate) * (1 - relTolerance) ? StabilityRegime.Oscillatory
        : StabilityRegime.Unstable;

    /// <summary>Optimiser steps between anchor updates, S = T_ema·Λ·minibatches.</summary>
    public static int StepsPerAnchorUpdate(int emaPeriod, int innerUpdates, int minibatches) => checked(emaPeriod * innerUpdates * minibatches);
}

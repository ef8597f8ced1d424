using EmaPg.Divergences;
using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>
/// RPG's regularised objectives (Zhang et al. 2025), off-policy from π_old: J = E_{π_θ}[A] − β·D with D one of KL(π_θ‖π_ref),
/// KL(π_ref‖π_θ) or their unnormalised forms UKL(π‖ρ) = Σ π log(π/ρ) − π + ρ. Per token, with w = π_θ/π_old
/// (differentiable), ℓ = log π_θ − log π_ref and ρ/o = π_ref/π_old (data), the importance-weighted losses are
///   rkl: −wA + β·wℓ      urkl: −wA + β(wℓ − w + ρ/o)      fkl: −wA + β·(ρ/o)(−ℓ)      ufkl: −wA + β((ρ/o)(−ℓ) + w − ρ/o),
/// each E_{π_old}-unbiased for −J in value and gradient. Their per-sample gradient is sg(w)·g·∇log π_θ with
///   g = −A + β(ℓ + 1), −A + βℓ, −A − β·e^{−ℓ}, −A + β(1 − e^{−ℓ}),
/// which the REINFORCE-style forms (-reinforce) use directly: sg(L) + sg(w·g)·(log π_θ − sg(log π_θ)), the same value and
/// the same gradient per sample with the gradient flowing only through log π_θ (RPG's point (ii)). The unnormalised forms
/// differ from the normalised ones only by a zero-mean baseline in g (−β and +β·1), so on a normalised policy they share
/// the expected gradient and differ in variance. Both forms apply RPG's dual clip as a token mask (<see cref="DualClip"/>).
/// </summary>
public static class RpgObjectives
{
    private static readonly FDivergence UnnormalizedReverse = FDivergence.ReverseKl with { Name = "unnormalized-reverse-kl", Display = "UKL(π_θ‖π_ref)" };
    private static readonly FDivergence UnnormalizedForward = FDivergence.ForwardKl with { Name = "unnormalized-forward-kl", Display = "UKL(π_ref‖π_θ)" };

    private delegate (Tensor Loss, Tensor G) Form(Tensor w, Tensor ell, Tensor refOverOld, Tensor a, double beta);

    // (importance-weighted loss L to minimise, REINFORCE coefficient g with ∇L = sg(w)·g·∇log π_θ per sample).
    private static readonly (string Key, FDivergence Target, string Eq, Form F)[] Kinds =
    [
        ("rkl", FDivergence.ReverseKl, "−wA + β·wℓ", (w, ell, ro, a, b) => (-w * a + w * ell * b, -a + (ell.detach() + 1.0) * b)),
        ("urkl", UnnormalizedReverse, "−wA + β(wℓ − w + ρ/o)", (w, ell, ro, a, b) => (-w * a + (w * ell - w + ro) * b, -a + ell.detach() * b)),
        ("fkl", FDivergence.ForwardKl, "−wA − β·(ρ/o)ℓ", (w, ell, ro, a, b) => (-w * a - ro * ell * b, -a - (-ell.detach()).exp() * b)),
        ("ufkl", UnnormalizedForward, "−wA + β(−(ρ/o)ℓ + w − ρ/o)", (w, ell, ro, a, b) => (-w * a + (-ro * ell + w - ro) * b, -a + (1.0 - (-ell.detach()).exp()) * b)),
    ];

    public static IEnumerable<PolicyLoss> All => Kinds.SelectMany(k => new[]
    {
        new PolicyLoss($"rpg-{k.Key}", $"RPG, L = {k.Eq}", $"RPG's importance-weighted loss for J = E[A] − β·{k.Target.Display}, off-policy from π_old, dual clip", k.Target,
            (x, o) => Compute(x, o, k.F, reinforce: false, $"rpg-{k.Key}")),
        new PolicyLoss($"rpg-{k.Key}-reinforce", $"RPG-REINFORCE, sg(w·g)·∇log π", $"RPG's REINFORCE-style loss (stop-gradient weight) for J = E[A] − β·{k.Target.Display}, dual clip", k.Target,
            (x, o) => Compute(x, o, k.F, reinforce: true, $"rpg-{k.Key}-reinforce")),
    });

    private static (Tensor Objective, Tensor Mask) Compute(PolicyLossInputs x, PolicyLossOptions o, Form f, bool reinforce, string name)
    {
        var anchor = x.RequireAnchor(name);
        var old = x.OldLogp.detach();
        var w = (x.Logp - old).exp();
        var ell = x.Logp - anchor;
        var refOverOld = (anchor - old).exp();
        var a = x.TokenAdvantages;
        var (loss, g) = f(w, ell, refOverOld, a, o.Beta);
        if (reinforce) loss = loss.detach() + (w.detach() * g).detach() * (x.Logp - x.Logp.detach());
        var keep = DualClip.Keep(a.expand_as(x.Logp), w.detach(), o);
        return (-(keep * loss), keep);
    }
}

/// <summary>
/// The dual clip of RPG's scripts (and dual-clip PPO) as a binary token mask on w = π_θ/π_old: M = 0 where A &gt; 0 and
/// w &gt; 1 + ε_high, where A &lt; 0 and w &lt; 1 − ε_low, and where A &lt; 0 and w &gt; c (the lower bound −c·|A| of a negative
/// advantage's loss), else 1. A masked token contributes no gradient.
/// </summary>
public static class DualClip
{
    public static Tensor Keep(Tensor advantages, Tensor w, PolicyLossOptions o)
    {
        var pos = advantages > 0;
        var neg = advantages < 0;
        var clipped = pos.logical_and(w > 1.0 + o.EpsHigh)
            .logical_or(neg.logical_and(w < 1.0 - o.EpsLow))
            .logical_or(neg.logical_and(w > o.DualClipC));
        return clipped.logical_not().to_type(w.dtype);
    }
}

/// <summary>
/// GRPO's KL term and RPG's correction of it. GRPO adds β·k3 (k3 = π_ref/π_θ − 1 − log(π_ref/π_θ)) at tokens sampled from
/// π_old without a weight: its expected gradient is β·∇KL(π_ref‖π_θ) on-policy (Table 1: k3's gradient is the forward
/// KL's) and matches no KL off-policy. Weighting it by the differentiable w = π_θ/π_old gives
/// E_{π_old}[∇(w·k3)] = ∇UKL(π_θ‖π_ref) = ∇KL(π_θ‖π_ref), the reverse KL GRPO means. The reward part is clip-higher.
/// </summary>
public static class GrpoK3
{
    public static IEnumerable<PolicyLoss> All =>
    [
        new("grpo-k3", "GRPO, J^clip − β·k3", "clip-higher plus GRPO's unweighted k3 KL term, as GRPO writes it (its gradient is the forward KL's on-policy, no KL's off-policy)",
            FDivergence.ReverseKl, (x, o) => Compute(x, o, corrected: false)),
        new("grpo-k3-corrected", "RPG, J^clip − β·w·k3", "clip-higher plus the k3 term weighted by w = π_θ/π_old (RPG's correction): ∇ of KL(π_θ‖π_ref) on- and off-policy",
            FDivergence.ReverseKl, (x, o) => Compute(x, o, corrected: true)),
    ];

    private static (Tensor Objective, Tensor Mask) Compute(PolicyLossInputs x, PolicyLossOptions o, bool corrected)
    {
        var anchor = x.RequireAnchor(corrected ? "grpo-k3-corrected" : "grpo-k3");
        var (j, keep) = GrpoClipHigher.Compute(x.Logp, x.OldLogp, x.Advantages, o.EpsLow, o.EpsHigh);
        var negEll = anchor - x.Logp;
        var k3 = negEll.exp() - 1.0 - negEll;
        var kl = corrected ? (x.Logp - x.OldLogp.detach()).exp() * k3 : k3;
        return (j - kl * o.Beta, keep);
    }
}

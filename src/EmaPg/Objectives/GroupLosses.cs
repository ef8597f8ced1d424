using EmaPg.Common;
using EmaPg.Divergences;
using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>
/// What a group loss of App. J/K reads: G prompts × N responses, each response one sample y with a scalar return. All [G, N];
/// only <see cref="Logp"/> carries gradient. Returns are pre-scaled by 1/β (App. J: β is absorbed into R).
/// </summary>
public sealed record GroupLossInputs
{
    /// <summary>log π_θ(y), differentiable.</summary>
    public required Tensor Logp { get; init; }
    /// <summary>log π_ref(y).</summary>
    public required Tensor AnchorLogp { get; init; }
    /// <summary>log π_sampling(y): the off-policy weight is s = sg(π_θ/π_sampling) (App. J's note on off-policy correction).</summary>
    public required Tensor SamplingLogp { get; init; }
    /// <summary>R(x, y)/β.</summary>
    public required Tensor Returns { get; init; }
    /// <summary>The exact log Z(x) per group [G], when known (tests, analysis); null = the E-step estimate from the group.</summary>
    public Tensor? LogZ { get; init; }
}

/// <summary>A loss of App. J/K over groups: per-group loss to minimise [G], averaged over the group's N responses.</summary>
public sealed record GroupLoss(string Name, string Equation, string Description, Func<GroupLossInputs, Tensor> Compute);

/// <summary>
/// App. J (policy gradients from sampled KL estimators, target π* ∝ π_ref·exp(R)) and App. K (f-divergence M-steps). Everything
/// is a mean over the group, so the expected gradients below are per response; s = sg(π_θ/π_sampling) per response.
/// The exact tests (GroupLossExpectationTests) establish what each one's expected gradient is; docs/findings.md compares
/// that with the appendix's claims.
/// </summary>
public static class GroupLosses
{
    private static Tensor S(GroupLossInputs x) => (x.Logp.detach() - x.SamplingLogp.detach()).exp();
    private static Tensor Baseline(GroupLossInputs x) => x.Returns.mean([1], keepdim: true);

    /// <summary>J.1, eq. 147: mean_i s_i·(−sg(R_i − V) + sg(KL̂))·log π_i, V = mean_i R_i, KL̂ = mean_i sg(ℓ_i).</summary>
    public static Tensor Grpo(GroupLossInputs x)
    {
        var kl = (x.Logp.detach() - x.AnchorLogp).mean([1], keepdim: true);
        return (S(x) * (kl - (x.Returns - Baseline(x))) * x.Logp).mean([1]);
    }

    /// <summary>J.2, eq. 148 (APA): mean_i s_i·½(ℓ_i − sg(R_i − V))².</summary>
    public static Tensor Apa(GroupLossInputs x) =>
        (S(x) * 0.5 * (x.Logp - x.AnchorLogp - (x.Returns - Baseline(x))).square()).mean([1]);

    /// <summary>J.3, eq. 149 (RWR/MPO): −mean_i s_i·sg(softmax_i(R_i − ℓ_i))·log π_i, the softmax over the group.</summary>
    public static Tensor Rwr(GroupLossInputs x)
    {
        var weights = (x.Returns - (x.Logp.detach() - x.AnchorLogp)).softmax(1);
        return -(S(x) * weights * x.Logp).mean([1]);
    }

    /// <summary>
    /// log ŵ_i = log π_ref(y_i) + R_i − log π_θ(y_i) − log Ẑ (data), Ẑ the E-step estimate (1/N) Σ_j sg(π_ref/π_sampling)(y_j)·e^{R_j}
    /// (App. K, with π_sampling = π_θ on-policy as written there), or the exact Z when given.
    /// </summary>
    internal static Tensor LogW(GroupLossInputs x)
    {
        var logZ = x.LogZ?.unsqueeze(1) ?? ((x.AnchorLogp - x.SamplingLogp.detach() + x.Returns).logsumexp(1, keepdim: true) - Math.Log(x.Returns.shape[1]));
        return x.AnchorLogp + x.Returns - x.Logp.detach() - logZ;
    }

    /// <summary>App. K eq. 161: M-step for D_f(π_θ‖π*): mean_i s_i·sg(φ_f(ŵ_i))·log π_i, φ_f(w) = f′(1/w).</summary>
    public static Tensor MStepPolicyToTarget(FDivergence f, GroupLossInputs x) =>
        (S(x) * f.FPrimeOfT((-LogW(x)).exp()) * x.Logp).mean([1]);

    /// <summary>App. K eq. 162: M-step for D_f(π*‖π_θ): mean_i s_i·sg(ψ_f(ŵ_i))·log π_i, ψ_f(w) = f(w) − w·f′(w).</summary>
    public static Tensor MStepTargetToPolicy(FDivergence f, GroupLossInputs x)
    {
        var logW = LogW(x);
        var w = logW.exp();
        return (S(x) * (f.FOfLogT(logW) - w * f.FPrimeOfT(w)) * x.Logp).mean([1]);
    }

    private static IEnumerable<GroupLoss> MSteps(double alpha) =>
        new[] { FDivergence.ReverseKl, FDivergence.ForwardKl }.Concat(FDivergence.Table5(alpha)).SelectMany(f => new[]
        {
            new GroupLoss($"mstep-{f.Name}-policy-target", "App. K eq. 161", $"M-step minimising D_f(π_θ‖π*) for {f.Display}'s f, E-step Ẑ", x => MStepPolicyToTarget(f, x)),
            new GroupLoss($"mstep-{f.Name}-target-policy", "App. K eq. 162", $"M-step minimising D_f(π*‖π_θ) for {f.Display}'s f, E-step Ẑ", x => MStepTargetToPolicy(f, x)),
        });

    public static IReadOnlyList<GroupLoss> All(double alpha = 0.5) =>
    [
        new("j1-grpo", "App. J eq. 147", "K1: REINFORCE with the group-mean baseline plus the KL̂ score term (PPO/GRPO)", Grpo),
        new("j2-apa", "App. J eq. 148", "K2: APA / Kimi squared loss", Apa),
        new("j5-rwr", "App. J eq. 149", "K5: softmax-weighted log-likelihood (RWR / MPO)", Rwr),
        new("j3-combined", "App. J eq. 150", "K3: L1 + L5 (GRPO + MPO)", x => Grpo(x) + Rwr(x)),
        new("j3pp-combined", "App. J eq. 151", "K3⁺⁺: L1 + L2 (GRPO + APA)", x => Grpo(x) + Apa(x)),
        .. MSteps(alpha),
    ];

    public static GroupLoss Get(string name, double alpha = 0.5) =>
        All(alpha).FirstOrDefault(l => l.Name == name) ?? throw new UserError($"group loss must be one of {string.Join(", ", All(alpha).Select(l => l.Name))}, got '{name}'.");
}

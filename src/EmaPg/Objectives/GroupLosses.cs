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

/// <summary>
/// One term of what the appendix says a group loss's expected gradient is: Coefficient (÷ N when <see cref="PerN"/>) times
/// ∇D_F(π_θ‖π*) when <see cref="PolicyFirst"/>, else ∇D_F(π*‖π_θ); D_F(P‖Q) = Σ Q·F(P/Q), π* ∝ π_ref·e^R.
/// </summary>
public sealed record GroupLossClaimTerm(double Coefficient, bool PerN, FDivergence F, bool PolicyFirst)
{
    /// <summary>The divergence's name with π* in place of π_ref, in the argument order of this term.</summary>
    public string Divergence => PolicyFirst
        ? F.Display.Replace("π_ref", "π*", StringComparison.Ordinal)
        : F.Display.Replace("π_θ‖π_ref", "π*‖π_θ", StringComparison.Ordinal).Replace("π_ref‖π_θ", "π_θ‖π*", StringComparison.Ordinal);
}

/// <summary>The appendix's claim for a loss: E[∇loss] = Σ terms (per response); Source is where the appendix says so.</summary>
public sealed record GroupLossClaim(string Source, IReadOnlyList<GroupLossClaimTerm> Terms)
{
    public string Display => string.Join(" + ", Terms.Select(t =>
        (t.PerN ? (t.Coefficient == 1 ? "(1/N)·" : $"({C(t)}/N)·") : t.Coefficient == 1 ? "" : $"{C(t)}·") + t.Divergence));

    private static string C(GroupLossClaimTerm t) => t.Coefficient.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static GroupLossClaim Of(string source, params GroupLossClaimTerm[] terms) => new(source, terms);
}

/// <summary>
/// A loss of App. J/K over groups: per-group loss to minimise [G], averaged over the group's N responses; Claim is what App. J/K
/// says it minimises; UsesZ: it reads <see cref="GroupLossInputs.LogZ"/> (App. K's M-steps), so it can be given the exact Z.
/// </summary>
public sealed record GroupLoss(string Name, string Equation, string Description, GroupLossClaim Claim, Func<GroupLossInputs, Tensor> Compute)
{
    public bool UsesZ { get; init; }
}

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

    // KL(π_θ‖π*) (eq. 141's "reverse KL") and KL(π*‖π_θ), as terms: f = t log t with the policy first / second.
    private static GroupLossClaimTerm ToTarget(double c = 1, bool perN = false) => new(c, perN, FDivergence.ReverseKl, PolicyFirst: true);
    private static GroupLossClaimTerm FromTarget(double c = 1, bool perN = false) => new(c, perN, FDivergence.ReverseKl, PolicyFirst: false);

    /// <summary>
    /// Eq. 161–162 claim ∇D_f(π_θ‖π*) and ∇D_f(π*‖π_θ). For the two KLs the claim is what Tables 9–10 call the row: both tables
    /// label f = t log t "Forward KL" and f = −log t "Reverse KL", in eq. 141's sense (reverse = KL(π_θ‖π*)).
    /// </summary>
    private static GroupLossClaim MStepClaim(FDivergence f, bool policyFirst)
    {
        string table = policyFirst ? "Table 9" : "Table 10";
        if (f == FDivergence.ReverseKl) return GroupLossClaim.Of($"{table}, row \"Forward KL\" (f = t log t)", FromTarget());
        if (f == FDivergence.ForwardKl) return GroupLossClaim.Of($"{table}, row \"Reverse KL\" (f = −log t)", ToTarget());
        return GroupLossClaim.Of(policyFirst ? "eq. 161, Table 9" : "eq. 162, Table 10", new GroupLossClaimTerm(1, false, f, policyFirst));
    }

    private static IEnumerable<GroupLoss> MSteps(double alpha) =>
        new[] { FDivergence.ReverseKl, FDivergence.ForwardKl }.Concat(FDivergence.Table5(alpha)).SelectMany(f => new[]
        {
            new GroupLoss($"mstep-{f.Name}-policy-target", "App. K eq. 161", $"M-step minimising D_f(π_θ‖π*) for {f.Display}'s f, E-step Ẑ", MStepClaim(f, true), x => MStepPolicyToTarget(f, x)) { UsesZ = true },
            new GroupLoss($"mstep-{f.Name}-target-policy", "App. K eq. 162", $"M-step minimising D_f(π*‖π_θ) for {f.Display}'s f, E-step Ẑ", MStepClaim(f, false), x => MStepTargetToPolicy(f, x)) { UsesZ = true },
        });

    /// <summary>
    /// The claims of App. J: every loss minimises eq. 141's KL(π_θ‖π*) (J.1–J.2, eq. 147–148); K5's gradient (eq. 149) is
    /// −w·∇log π, i.e. ∇KL(π*‖π_θ), with its group mean's 1/N (softmax_i ≈ w_i/N); eq. 150–151 are the sums of their parts.
    /// </summary>
    public static IReadOnlyList<GroupLoss> All(double alpha = 0.5) =>
    [
        new("j1-grpo", "App. J eq. 147", "K1: REINFORCE with the group-mean baseline plus the KL̂ score term (PPO/GRPO)", GroupLossClaim.Of("eq. 141, 147", ToTarget()), Grpo),
        new("j2-apa", "App. J eq. 148", "K2: APA / Kimi squared loss", GroupLossClaim.Of("eq. 141, 148", ToTarget()), Apa),
        new("j5-rwr", "App. J eq. 149", "K5: softmax-weighted log-likelihood (RWR / MPO)", GroupLossClaim.Of("eq. 149 (K5: −w·∇log π, group mean)", FromTarget(perN: true)), Rwr),
        new("j3-combined", "App. J eq. 150", "K3: L1 + L5 (GRPO + MPO)", GroupLossClaim.Of("eq. 150: ∇L1 + ∇L5", ToTarget(), FromTarget(perN: true)), x => Grpo(x) + Rwr(x)),
        new("j3pp-combined", "App. J eq. 151", "K3⁺⁺: L1 + L2 (GRPO + APA)", GroupLossClaim.Of("eq. 151: ∇L1 + ∇L2", ToTarget(2)), x => Grpo(x) + Apa(x)),
        .. MSteps(alpha),
    ];

    public static GroupLoss Get(string name, double alpha = 0.5) =>
        All(alpha).FirstOrDefault(l => l.Name == name) ?? throw new UserError($"group loss must be one of {string.Join(", ", All(alpha).Select(l => l.Name))}, got '{name}'.");
}

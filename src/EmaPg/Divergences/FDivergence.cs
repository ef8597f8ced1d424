using static TorchSharp.torch;

namespace EmaPg.Divergences;

/// <summary>
/// An f-divergence D_f(P‖Q) = Σ_j Q(j) f(P(j)/Q(j)) (eq. 109), with f written as a function of
/// u = log t = log P − log Q so every estimator can work in log space. f′ (of t) gives the closed-form
/// gradient used by the audit: ∂D_f/∂z_i = P_i (f′(t_i) − Σ_j P_j f′(t_j)) for logits z of P.
/// Reverse KL (f = t log t) and forward KL (f = −log t) are members of the family too (Table 5).
/// </summary>
public sealed record FDivergence(string Name, string Display, Func<Tensor, Tensor> FOfLogT, Func<Tensor, Tensor> FPrimeOfT)
{
    public static readonly FDivergence ReverseKl = new("reverse-kl", "KL(π_θ‖π_ref)", u => u.exp() * u, t => t.log() + 1.0);
    public static readonly FDivergence ForwardKl = new("forward-kl", "KL(π_ref‖π_θ)", u => -u, t => -t.reciprocal());
    public static readonly FDivergence Pearson = new("pearson", "χ²_Pearson(π_θ‖π_ref)", u => (u.exp() - 1.0).square(), t => (t - 1.0) * 2.0);
    // Table 5 prints f(t) = (t−1)² for Neyman too; the estimator column r·(1−w)² implies f(t) = (t−1)²/t,
    // the standard Neyman χ² (docs/findings.md, finding 4).
    public static readonly FDivergence Neyman = new("neyman", "χ²_Neyman(π_θ‖π_ref)", u => (u.exp() - 1.0).square() * (-u).exp(), t => 1.0 - t.square().reciprocal());
    public static readonly FDivergence SquaredHellinger = new("hellinger", "H²(π_θ‖π_ref)", u => ((u * 0.5).exp() - 1.0).square() * 0.5, t => (1.0 - t.rsqrt()) * 0.5);
    public static readonly FDivergence JensenShannon = new("js", "JS(π_θ‖π_ref)",
        u => (u.exp() * u - (u.exp() + 1.0) * (nn.functional.softplus(u) - Math.Log(2.0))) * 0.5,
        t => (t * 2.0 / (t + 1.0)).log() * 0.5);
    public static readonly FDivergence TotalVariation = new("tv", "TV(π_θ‖π_ref)", u => (u.exp() - 1.0).abs() * 0.5, t => (t - 1.0).sign() * 0.5);

    /// <summary>α-divergence, f(t) = (t^α − 1 − α(t − 1)) / (α(α − 1)), α ∉ {0, 1}.</summary>
    public static FDivergence AlphaDivergence(double alpha) => new($"alpha", $"D_α={alpha}(π_θ‖π_ref)",
        u => ((u * alpha).exp() - 1.0 - (u.exp() - 1.0) * alpha) / (alpha * (alpha - 1.0)),
        t => (t.pow(alpha - 1.0) - 1.0) / (alpha - 1.0));

    /// <summary>The f-divergences of Table 5 other than the two KLs.</summary>
    public static IReadOnlyList<FDivergence> Table5(double alpha) =>
        [Pearson, Neyman, SquaredHellinger, JensenShannon, TotalVariation, AlphaDivergence(alpha)];

    /// <summary>g_f(w) = w f(1/w) (eq. 112) evaluated at u = −log w: e^{−u} f(u).</summary>
    public Tensor GOfLogT(Tensor u) => (-u).exp() * FOfLogT(u);
}

using EmaPg.Divergences;
using EmaPg.Objectives;
using static TorchSharp.torch;

namespace EmaPg.Audit;

/// <summary>One line of the policy-loss audit: a loss's exact expected value and gradient against −J = −E_{π_θ}[A] + β·D.</summary>
public sealed record PolicyLossAuditRow(
    string Loss, string Objective, string Equation, double ExpectedLoss, double TargetLoss,
    double ValueRelError, double GradientRelError, bool ValueUnbiased, bool GradientUnbiased, string GradientMatches);

/// <summary>
/// Exact expectation of a policy loss on a categorical problem: every token y is one response of length 1 with advantage
/// A(y), sampled from π_old = the problem's sampling policy and weighted by π_old(y); π_ref is the anchor. The loss to
/// minimise is −objective, so an unbiased loss has E_{π_old}[loss] = −E_{π_θ}[A] + β·D(π_θ, π_ref) and the same gradient.
/// Clipping is off (<see cref="PolicyLossOptions.Unclipped"/>): the clip is a variance control, biased by design.
/// </summary>
public static class PolicyLossAudit
{
    /// <summary>The β the audit uses: large enough that a wrong regulariser gradient is not hidden by the reward term.</summary>
    public const double Beta = 0.5;

    /// <summary>Advantages A(y), one per token, standard normal from <paramref name="seed"/>.</summary>
    public static double[] Advantages(int vocab, int seed)
    {
        var rng = new Random(seed ^ 0x5eed);
        return Enumerable.Range(0, vocab).Select(_ => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble())).ToArray();
    }

    /// <summary>E_{y∼π_old}[loss(y)] and E_{y∼π_old}[∇_z loss(y)], exactly.</summary>
    public static ExactExpectation.Moments Expect(PolicyLoss loss, CategoricalProblem p, double[] advantages, PolicyLossOptions o)
    {
        using var scope = NewDisposeScope();
        var z = tensor(p.PolicyLogits, dtype: float64).requires_grad_(true);
        var old = tensor(p.SamplingLogits, dtype: float64).log_softmax(0);
        var x = new PolicyLossInputs
        {
            Logp = z.log_softmax(0).unsqueeze(1), OldLogp = old.unsqueeze(1), Advantages = tensor(advantages, dtype: float64),
            Mask = ones(p.Vocab, 1, dtype: float64), AnchorLogp = tensor(p.AnchorLogits, dtype: float64).log_softmax(0).unsqueeze(1),
        };
        var (objective, _) = loss.Compute(x, o);
        var mean = -(old.exp() * objective.squeeze(1)).sum();
        mean.backward();
        return new ExactExpectation.Moments(mean.item<double>(), z.grad!.data<double>().ToArray());
    }

    /// <summary>−E_{π_θ}[A] + β·D(π_θ, π_ref) and its gradient in the policy logits, closed form (D = null: no regulariser).</summary>
    public static ExactExpectation.Moments Target(FDivergence? d, CategoricalProblem p, double[] advantages, double beta)
    {
        using var scope = NewDisposeScope();
        var pi = tensor(p.PolicyLogits, dtype: float64).softmax(0);
        var a = tensor(advantages, dtype: float64);
        var ea = (pi * a).sum();
        double value = -ea.item<double>();
        var grad = -(pi * (a - ea));
        if (d is not null)
        {
            var reg = ExactExpectation.ClosedForm(d, p);
            value += beta * reg.Value;
            grad = grad + tensor(reg.Gradient, dtype: float64) * beta;
        }
        return new ExactExpectation.Moments(value, grad.data<double>().ToArray());
    }

    public static IReadOnlyList<PolicyLossAuditRow> Run(CategoricalProblem p, int seed, double beta = Beta)
    {
        var adv = Advantages(p.Vocab, seed);
        var o = PolicyLossOptions.Unclipped with { Beta = beta };
        var candidates = new (string Display, FDivergence? D)[] { ("−E[A]", null), ("−E[A] + β·KL(π_θ‖π_ref)", FDivergence.ReverseKl), ("−E[A] + β·KL(π_ref‖π_θ)", FDivergence.ForwardKl) };
        var closed = candidates.Select(c => Target(c.D, p, adv, beta)).ToArray();
        var rows = new List<PolicyLossAuditRow>();
        foreach (var loss in PolicyLosses.Registered)
        {
            var got = Expect(loss, p, adv, o);
            var want = Target(loss.Regularizer, p, adv, beta);
            double ve = ExactExpectation.RelativeError(got.Value, want.Value), ge = ExactExpectation.RelativeError(got.Gradient, want.Gradient);
            int match = Array.FindIndex(closed, c => ExactExpectation.RelativeError(got.Gradient, c.Gradient) < EstimatorAudit.Tolerance);
            string objective = loss.Regularizer is null ? "−E[A]" : $"−E[A] + β·{loss.Regularizer.Display}";
            rows.Add(new PolicyLossAuditRow(loss.Name, objective, loss.Equation, got.Value, want.Value, ve, ge,
                ve < EstimatorAudit.Tolerance, ge < EstimatorAudit.Tolerance, match < 0 ? "none" : candidates[match].Display));
        }
        return rows;
    }
}

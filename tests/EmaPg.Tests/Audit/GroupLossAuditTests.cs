using EmaPg.Audit;
using EmaPg.Divergences;
using EmaPg.Objectives;

namespace EmaPg.Tests.Audit;

/// <summary>
/// `emapg audit`'s group-loss table agrees with what GroupLossExpectationTests establish independently (docs/findings.md,
/// findings 5–6): J.1/J.2/K3⁺⁺ weigh reward and KL as −(1−1/N)·∇E[R] + c·∇KL, not as ∇KL(π_θ‖π*); RWR and K3 match no
/// claim; the M-steps are exact only with the true Z; Table 9's KL labels are swapped, Table 10's are not.
/// </summary>
public class GroupLossAuditTests
{
    private const double Tol = 1e-9;

    public static IEnumerable<object[]> Cases() =>
        from n in new[] { 2, 3 } from off in new[] { false, true } select new object[] { n, off };

    [Theory]
    [MemberData(nameof(Cases))]
    public void VerdictsAgreeWithTheExactTestsFindings(int n, bool off)
    {
        var rows = GroupLossAudit.Run(CategoricalProblem.Random(6, off, 11), seed: 11, groupSize: n);
        Assert.Equal(GroupLosses.All().Sum(l => l.UsesZ ? 2 : 1), rows.Count);
        Assert.All(rows, r => Assert.Equal(n, r.GroupSize));
        var j = rows.Where(r => r.Partition == GroupLossAudit.GroupBaseline).ToDictionary(r => r.Loss);

        double c = 1 - 1.0 / n;
        foreach (var (loss, reward, kl) in new[] { ("j1-grpo", -c, 1.0 / n), ("j2-apa", -c, 1.0), ("j3pp-combined", -2 * c, 1 + 1.0 / n) })
        {
            Assert.False(j[loss].AsClaimed, loss);
            Assert.True(j[loss].GradientRelError > 1e-3, $"{loss}: {j[loss].GradientRelError:E2}");
            Assert.Equal(reward, j[loss].RewardCoefficient!.Value, Tol);
            Assert.Equal(kl, j[loss].KlCoefficient!.Value, Tol);
        }
        foreach (var loss in new[] { "j5-rwr", "j3-combined" })
        {
            Assert.False(j[loss].AsClaimed, loss);
            Assert.Equal("none", j[loss].GradientEquals);
            Assert.Null(j[loss].RewardCoefficient);
        }

        foreach (var r in rows.Where(r => r.Partition == GroupLossAudit.EStep))
            Assert.False(r.AsClaimed, $"{r.Loss} with the E-step Ẑ at N = {n}: rel. err {r.GradientRelError:E2}");
        foreach (var r in rows.Where(r => r.Partition == GroupLossAudit.ExactZ))
        {
            bool table9Kl = r.Loss is "mstep-reverse-kl-policy-target" or "mstep-forward-kl-policy-target";
            Assert.Equal(!table9Kl, r.AsClaimed);
            if (!table9Kl) Assert.True(r.GradientRelError < Tol, $"{r.Loss}: {r.GradientRelError:E2}");
        }
        var exact = rows.Where(r => r.Partition == GroupLossAudit.ExactZ).ToDictionary(r => r.Loss);
        // Table 9's "Forward KL" row (f = t log t) minimises the reverse KL of eq. 141, its "Reverse KL" row the forward one.
        Assert.Equal("KL(π*‖π_θ)", exact["mstep-reverse-kl-policy-target"].Claim);
        Assert.Equal("KL(π_θ‖π*)", exact["mstep-reverse-kl-policy-target"].GradientEquals);
        Assert.Equal("KL(π*‖π_θ)", exact["mstep-forward-kl-policy-target"].GradientEquals);
        Assert.Equal("KL(π*‖π_θ)", exact["mstep-reverse-kl-target-policy"].GradientEquals);
        Assert.Equal("KL(π_θ‖π*)", exact["mstep-forward-kl-target-policy"].GradientEquals);
    }

    /// <summary>The audit's own gradient agrees with an independent hand sum for K5 (App. J's RWR) on a tiny problem.</summary>
    [Fact]
    public void ExpectedGradientIsTheHandWrittenSumOverGroups()
    {
        var p = CategoricalProblem.Random(3, offPolicy: true, seed: 5);
        var r = PolicyLossAudit.Advantages(3, 5);
        var pi = Softmax(p.PolicyLogits);
        var rho = Softmax(p.AnchorLogits);
        var ps = Softmax(p.SamplingLogits);
        int n = 2;
        var want = new double[3];
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
            {
                int[] y = [a, b];
                var logits = y.Select(t => r[t] - Math.Log(pi[t] / rho[t])).ToArray();
                var sm = Softmax(logits);
                for (int i = 0; i < n; i++)
                    for (int k = 0; k < 3; k++)
                        want[k] -= ps[a] * ps[b] * (pi[y[i]] / ps[y[i]]) * sm[i] / n * ((k == y[i] ? 1 : 0) - pi[k]);
            }
        var got = GroupLossAudit.ExpectedGradient(GroupLosses.Get("j5-rwr"), p, r, n);
        Assert.True(ExactExpectation.RelativeError(got, want) < Tol, $"{ExactExpectation.RelativeError(got, want):E2}");
    }

    /// <summary>A loss that is off by 5 % (or drops its KL̂ term) gets a failing verdict and other coefficients: the audit can fail.</summary>
    [Fact]
    public void ABrokenLossGetsAFailingVerdict()
    {
        var p = CategoricalProblem.Random(5, offPolicy: true, seed: 2);
        var pearson = GroupLosses.Get("mstep-pearson-policy-target");
        var j1 = GroupLosses.Get("j1-grpo");
        var broken = new[]
        {
            pearson,
            pearson with { Name = "pearson-scaled", Compute = x => pearson.Compute(x) * 1.05 },
            j1 with { Name = "j1-no-kl", Compute = x => GroupLosses.Grpo(x with { AnchorLogp = x.Logp.detach() }) },
        };
        var rows = GroupLossAudit.Run(p, seed: 2, groupSize: 2, losses: broken).ToDictionary(r => (r.Loss, r.Partition));
        Assert.True(rows[("mstep-pearson-policy-target", GroupLossAudit.ExactZ)].AsClaimed);
        var scaled = rows[("pearson-scaled", GroupLossAudit.ExactZ)];
        Assert.False(scaled.AsClaimed);
        Assert.Equal(0.05, scaled.GradientRelError, 1e-9);
        var noKl = rows[("j1-no-kl", GroupLossAudit.GroupBaseline)];
        Assert.False(noKl.AsClaimed);
        Assert.Equal(-0.5, noKl.RewardCoefficient!.Value, Tol);
        Assert.Equal(0.0, noKl.KlCoefficient!.Value, Tol);
    }

    /// <summary>At |V| = 2 every gradient lies on one line, so no reward/KL coefficients are reported (and JSON gets no NaN).</summary>
    [Fact]
    public void TwoTokensGiveNoCoefficients()
    {
        var rows = GroupLossAudit.Run(CategoricalProblem.Random(2, false, 1), seed: 1);
        Assert.All(rows, r => { Assert.Null(r.RewardCoefficient); Assert.Null(r.KlCoefficient); Assert.True(double.IsFinite(r.GradientRelError), r.Loss); });
        System.Text.Json.JsonSerializer.Serialize(rows);
    }

    private static double[] Softmax(double[] z)
    {
        double m = z.Max();
        var e = z.Select(v => Math.Exp(v - m)).ToArray();
        return e.Select(v => v / e.Sum()).ToArray();
    }
}

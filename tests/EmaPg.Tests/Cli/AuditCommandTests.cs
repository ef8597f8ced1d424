using System.Text.Json;
using EmaPg.Divergences;

namespace EmaPg.Tests.Cli;

[Collection("console")]
public class AuditCommandTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void JsonListsEveryEstimatorWithTheVerdictsTheExactTestsBack(bool offPolicy)
    {
        var args = new List<string> { "audit", "--json", "--vocab", "24", "--k", "5", "--seed", "3" };
        if (offPolicy) args.Add("--off-policy");
        var (code, stdout, _) = CliRunner.Run(args.ToArray());
        Assert.Equal(0, code);
        var rows = JsonDocument.Parse(stdout).RootElement.GetProperty("estimators").EnumerateArray().ToDictionary(r => r.GetProperty("estimator").GetString()!);

        var expected = new[] { "exact-reverse", "exact-forward", "k1", "k2", "k3", "k3pp", "k4", "k5", "truncated-reverse", "truncated-forward",
            "topk-reverse-paper", "topk-forward-paper", "topk-reverse", "topk-forward" }
            .Concat(new[] { "pearson", "neyman", "hellinger", "js", "tv", "alpha" }.SelectMany(f => new[] { $"exact-{f}", $"kf-{f}", $"topk-{f}" }));
        Assert.Equal(expected.OrderBy(x => x), rows.Keys.OrderBy(x => x));
        Assert.Equal(Estimators.Names.OrderBy(x => x), rows.Keys.OrderBy(x => x));

        (bool Value, bool Grad) V(string n) => (rows[n].GetProperty("valueUnbiased").GetBoolean(), rows[n].GetProperty("gradientUnbiased").GetBoolean());
        foreach (var n in rows.Keys)
        {
            foreach (var field in new[] { "target", "valueRelError", "gradientRelError" }) Assert.True(rows[n].TryGetProperty(field, out _), $"{n}.{field}");
            var want = n switch
            {
                "k1" or "k3" or "topk-reverse-paper" or "topk-forward-paper" => (true, false),
                "k2" => (false, true),
                "truncated-reverse" or "truncated-forward" => (false, false),
                _ => (true, true),
            };
            Assert.Equal(want, V(n));
        }
        Assert.Equal("KL(π_ref‖π_θ)", rows["k3"].GetProperty("gradientMatches").GetString());

        // Policy losses: every registered one, unbiased for its objective except GRPO's unweighted k3 term, whose gradient is the
        // forward KL's on-policy and no KL's off-policy (PolicyLossExpectationTests back each verdict).
        var losses = JsonDocument.Parse(stdout).RootElement.GetProperty("policyLosses").EnumerateArray().ToDictionary(r => r.GetProperty("loss").GetString()!);
        Assert.Equal(EmaPg.Objectives.PolicyLosses.Names.OrderBy(x => x), losses.Keys.OrderBy(x => x));
        foreach (var (n, r) in losses)
        {
            bool grpo = n == "grpo-k3";
            Assert.Equal(!grpo, r.GetProperty("gradientUnbiased").GetBoolean());
            Assert.Equal(!grpo || !offPolicy, r.GetProperty("valueUnbiased").GetBoolean());
        }
        Assert.Equal(offPolicy ? "none" : "−E[A] + β·KL(π_ref‖π_θ)", losses["grpo-k3"].GetProperty("gradientMatches").GetString());
        Assert.Equal("−E[A] + β·KL(π_θ‖π_ref)", losses["grpo-k3-corrected"].GetProperty("gradientMatches").GetString());
        Assert.Equal("−E[A] + β·KL(π_ref‖π_θ)", losses["rpg-ufkl-reinforce"].GetProperty("gradientMatches").GetString());

        // Group losses of App. J/K (GroupLossAuditTests and GroupLossExpectationTests back each verdict): only the M-steps with
        // the exact Z are as claimed, and of those not Table 9's two KL rows, whose labels are swapped.
        var root = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(new[] { "estimators", "policyLosses", "groupLosses" }, root.EnumerateObject().Select(p => p.Name));
        var groups = root.GetProperty("groupLosses").EnumerateArray().ToList();
        Assert.Equal(EmaPg.Objectives.GroupLosses.All().Select(l => l.Name).OrderBy(x => x), groups.Select(g => g.GetProperty("loss").GetString()!).Distinct().OrderBy(x => x));
        foreach (var g in groups)
        {
            string name = g.GetProperty("loss").GetString()!, z = g.GetProperty("partition").GetString()!;
            bool want = z == EmaPg.Audit.GroupLossAudit.ExactZ && name is not ("mstep-reverse-kl-policy-target" or "mstep-forward-kl-policy-target");
            Assert.Equal(want, g.GetProperty("asClaimed").GetBoolean());
            Assert.Equal(2, g.GetProperty("groupSize").GetInt32());
        }
        var j1 = groups.Single(g => g.GetProperty("loss").GetString() == "j1-grpo");
        Assert.Equal(-0.5, j1.GetProperty("rewardCoefficient").GetDouble(), 1e-9);
        Assert.Equal(0.5, j1.GetProperty("klCoefficient").GetDouble(), 1e-9);
    }

    [Fact]
    public void OutOfRangeOptionsAreNamedWithoutAStackTrace()
    {
        var (code, _, err) = CliRunner.Run("audit", "--vocab", "65");
        Assert.Equal(2, code);
        Assert.Contains("--vocab must be an integer in [2, 64]", err);
        Assert.DoesNotContain("   at ", err);
        (code, _, err) = CliRunner.Run("audit", "--vocab", "8", "--k", "9");
        Assert.Contains("--k must be an integer in [0, 8]", err);
        (code, _, err) = CliRunner.Run("audit", "--s-min", "2", "--s-max", "1");
        Assert.Contains("--s-max", err);
        (code, _, err) = CliRunner.Run("audit", "--vocab", "32", "--group-size", "4");
        Assert.Equal(2, code);
        Assert.Contains("--group-size 4 gives 32^4 groups", err);
        Assert.DoesNotContain("   at ", err);
    }
}

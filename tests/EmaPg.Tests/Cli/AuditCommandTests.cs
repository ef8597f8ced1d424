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
        var rows = JsonDocument.Parse(stdout).RootElement.EnumerateArray().ToDictionary(r => r.GetProperty("estimator").GetString()!);

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
    }
}

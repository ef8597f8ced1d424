using EmaPg.Common;
using EmaPg.Data;
using EmaPg.Rewards;

namespace EmaPg.Tests.Rewards;

public class RewardTests
{
    private static PromptExample Ex(params string[] truths) => PromptExample.ForAnswers(truths);

    [Theory]
    [InlineData("<answer>The Eiffel Tower</answer>", "eiffel tower", 1.0)]
    [InlineData("<answer>Paris</answer> no wait <answer>  paris! </answer>", "Paris", 1.0)]
    [InlineData("<answer>Lyon</answer> then <answer>Paris</answer>", "Lyon", 0.0)]
    [InlineData("An apple.", "apple", 1.0)]
    [InlineData("<answer>the the</answer>", "", 1.0)]
    [InlineData("<answer>New-York</answer>", "newyork", 1.0)]
    [InlineData("<answer>New York</answer>", "newyork", 0.0)]
    [InlineData("<answer>theatre</answer>", "atre", 0.0)]
    public void Exact_match_follows_squad_normalisation(string response, string gold, double expected) =>
        Assert.Equal(expected, new ExactMatchReward().Score(response, Ex(gold)));

    [Fact]
    public void Exact_match_accepts_any_of_several_golden_answers() =>
        Assert.Equal(1.0, new ExactMatchReward().Score("<answer>NYC</answer>", Ex("New York City", "NYC")));

    [Theory]
    [InlineData("95", "95", 1.0)]
    [InlineData("95 ", "95", 0.0)]
    [InlineData("96", "95", 0.0)]
    [InlineData("nine", "95", 0.0)]
    [InlineData("", "95", 0.0)]
    public void Arithmetic_reward_is_the_embedded_tasks_reward(string response, string answer, double expected) =>
        Assert.Equal(expected, new ArithmeticReward().Score(response, Ex(answer)));

    [Fact]
    public void Registry_knows_every_reward_and_names_them_on_a_typo()
    {
        Assert.Equal(["math", "exact-match", "arithmetic", "external"], RewardRegistry.All.Select(r => r.Name));
        var e = Assert.Throws<UserError>(() => RewardRegistry.Get("maths"));
        Assert.Contains("math, exact-match, arithmetic, external", e.Message);
        Assert.Contains("--command", Assert.Throws<UserError>(() => RewardRegistry.CreateSafe("external")).Message);
    }

    private sealed class Throwing : IReward { public double Score(string r, PromptExample e) => throw new InvalidOperationException("boom"); }
    private sealed class Hanging : IReward { public double Score(string r, PromptExample e) { Thread.Sleep(Timeout.Infinite); return 1; } }
    private sealed class Returns(double v) : IReward { public double Score(string r, PromptExample e) => v; }

    [Fact]
    public void Safe_reward_turns_exceptions_hangs_and_non_numbers_into_counted_zeros()
    {
        var t = TimeSpan.FromSeconds(2);
        var thrower = new SafeReward("t", new Throwing(), t);
        Assert.Equal(0.0, thrower.Score("x", Ex("x")));
        Assert.Equal(1L, thrower.Report().Exceptions);
        Assert.Contains("boom", thrower.LastFailure);

        var hang = new SafeReward("h", new Hanging(), t);
        Assert.Equal(0.0, hang.Score("x", Ex("x")));
        Assert.Equal(1L, hang.Report().Timeouts);

        foreach (var bad in new[] { double.NaN, double.PositiveInfinity, double.NegativeInfinity })
        {
            var s = new SafeReward("n", new Returns(bad), t);
            Assert.Equal(0.0, s.Score("x", Ex("x")));
            Assert.Equal(1L, s.Report().NonNumbers);
        }
        var ok = new SafeReward("ok", new Returns(0.75), t);
        Assert.Equal(0.75, ok.Score("x", Ex("x")));
        Assert.Equal(0L, ok.Report().Failures);
    }

    [Theory]
    [InlineData("so \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}")]
    [InlineData("\\boxed{a} \\boxed{\\{b\\}}", "\\{b\\}")]
    [InlineData("\\boxed{x^{2}}", "x^{2}")]
    [InlineData("\\boxed{1", null)]
    [InlineData("nothing", null)]
    [InlineData("\\fbox{3}", null)]
    public void Last_boxed_takes_the_last_box_with_balanced_braces(string text, string? expected) =>
        Assert.Equal(expected, EmaPg.Rewards.Math.MathGrader.LastBoxed(text));
}

using EmaPg.Data;
using EmaPg.Rewards;

namespace EmaPg.Tests.Rewards;

/// <summary>The external-process protocol against a real Python script, including every failure mode of the policy.</summary>
public class ExternalProcessRewardTests
{
    private static readonly string Script = Path.Combine(AppContext.BaseDirectory, "Fixtures", "rewards", "external_reward.py");
    private static string Command => $"python3 '{Script}'";
    private static PromptExample Ex(params string[] truths) => new() { GroundTruths = truths, DataSource = "test" };

    [Fact]
    public void Scores_correctly_and_reuses_one_process()
    {
        using var r = new ExternalProcessReward(Command, TimeSpan.FromSeconds(20));
        Assert.Equal(1.0, r.Score("42", Ex("42")));
        Assert.Equal(0.0, r.Score("41", Ex("42")));
        Assert.Equal(1.0, r.Score("b", Ex("a", "b")));
        Assert.Equal(1.0, r.Score("BARE", Ex("BARE")));
        Assert.Equal(5.0, r.Score("SERVED", Ex("x")));
        Assert.Equal(1, r.Starts);
    }

    [Fact]
    public void A_hang_times_out_scores_zero_and_the_process_is_restarted()
    {
        // Long enough for python3 to start on a loaded machine; the hang itself lasts an hour.
        using var inner = new ExternalProcessReward(Command, TimeSpan.FromSeconds(4));
        var safe = new SafeReward("ext", inner, TimeSpan.FromSeconds(4));
        Assert.Equal(1.0, safe.Score("7", Ex("7")));
        Assert.Equal(0.0, safe.Score("HANG", Ex("7")));
        Assert.Equal(1.0, safe.Score("7", Ex("7")));
        Assert.Equal(2.0, safe.Score("SERVED", Ex("x"))); // a fresh process: this is its 2nd line
        Assert.Equal(2, inner.Starts);
        var rep = safe.Report();
        Assert.Equal((4L, 1L, 0L, 0L), (rep.Calls, rep.Timeouts, rep.Exceptions, rep.NonNumbers));
        Assert.Contains("no answer within 4 s", safe.LastFailure);
    }

    [Fact]
    public void A_crash_scores_zero_is_counted_and_the_next_call_restarts()
    {
        using var inner = new ExternalProcessReward(Command, TimeSpan.FromSeconds(20));
        var safe = new SafeReward("ext", inner, TimeSpan.FromSeconds(20));
        Assert.Equal(0.0, safe.Score("CRASH", Ex("CRASH")));
        Assert.True(safe.LastFailure!.Contains("exited with code 3"), safe.LastFailure);
        Assert.Equal(1.0, safe.Score("ok", Ex("ok")));
        Assert.Equal(2, inner.Starts);
        Assert.Equal(1L, safe.Report().Exceptions);
    }

    [Fact]
    public void Non_numbers_and_garbage_score_zero_and_are_counted()
    {
        using var inner = new ExternalProcessReward(Command, TimeSpan.FromSeconds(20));
        var safe = new SafeReward("ext", inner, TimeSpan.FromSeconds(20));
        Assert.Equal(0.0, safe.Score("NAN", Ex("NAN")));
        Assert.Equal(0.0, safe.Score("GARBAGE", Ex("GARBAGE")));
        Assert.Equal(1.0, safe.Score("fine", Ex("fine")));
        Assert.Equal(2L, safe.Report().NonNumbers);
        Assert.Equal(1, inner.Starts);
    }

    [Fact]
    public void A_command_that_cannot_run_scores_zero()
    {
        using var inner = new ExternalProcessReward("exec /nonexistent/reward-binary", TimeSpan.FromSeconds(10));
        var safe = new SafeReward("ext", inner, TimeSpan.FromSeconds(10));
        Assert.Equal(0.0, safe.Score("x", Ex("x")));
        Assert.Equal(1L, safe.Report().Failures);
    }

    [Theory]
    [InlineData("1", 1.0)]
    [InlineData(" 0.25 ", 0.25)]
    [InlineData("{\"score\": 0.5}", 0.5)]
    [InlineData("{\"score\": -1, \"extra\": true}", -1.0)]
    public void Parses_both_output_forms(string line, double expected) => Assert.Equal(expected, ExternalProcessReward.Parse(line));

    [Theory]
    [InlineData("nan")]
    [InlineData("inf")]
    [InlineData("{\"score\": \"1\"}")]
    [InlineData("{\"reward\": 1}")]
    [InlineData("[1]")]
    [InlineData("")]
    public void Rejects_anything_else(string line) =>
        Assert.Equal(RewardFailureKind.NonNumber, Assert.Throws<RewardFailure>(() => ExternalProcessReward.Parse(line)).Kind);
}

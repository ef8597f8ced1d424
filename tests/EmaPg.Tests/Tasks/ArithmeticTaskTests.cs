using EmaPg.Common;
using EmaPg.Tasks;

namespace EmaPg.Tests.Tasks;

public class ArithmeticTaskTests
{
    private static readonly ArithmeticTask Task = new();

    private static int[] Ids(string s) => [.. Task.Chars.Encode(s), Task.Chars.EosId];

    [Fact]
    public void TokenizerRoundTripsAndReservesSpecials()
    {
        var t = new CharTokenizer("0123456789+-=");
        Assert.Equal(16, t.VocabSize);
        Assert.Equal((0, 1, 2), (t.PadId, t.BosId, t.EosId));
        var ids = t.Encode("37+58=95");
        Assert.All(ids, id => Assert.InRange(id, 3, 15));
        Assert.Equal("37+58=95", t.Decode(ids));
        Assert.Equal("95", t.Decode([1, .. t.Encode("95"), 2, 0, 0]));
        Assert.Equal("\uFFFD", t.Decode([99]));
        Assert.Throws<ArgumentException>(() => t.Encode("3*4"));
    }

    [Fact]
    public void ProblemsAreCorrectAndTestSplitIsFixedAndDisjoint()
    {
        var again = new ArithmeticTask();
        Assert.Equal(512, Task.TestSplit.Count);
        Assert.Equal(Task.TestSplit, again.TestSplit);
        Assert.Equal(512, Task.TestSplit.Select(p => p.Prompt).Distinct().Count());
        var test = Task.TestSplit.Select(p => p.Prompt).ToHashSet();
        var rng = new Random(3);
        for (int i = 0; i < 5000; i++)
        {
            var p = Task.SampleTrain(rng);
            Assert.DoesNotContain(p.Prompt, test);
            var m = System.Text.RegularExpressions.Regex.Match(p.Prompt, @"^(\d+)([+-])(\d+)=$");
            Assert.True(m.Success, p.Prompt);
            long a = long.Parse(m.Groups[1].Value), b = long.Parse(m.Groups[3].Value);
            Assert.Equal((m.Groups[2].Value == "+" ? a + b : a - b).ToString(), p.Answer);
            Assert.True(a < 100 && b < 100 && long.Parse(p.Answer) >= 0);
        }
    }

    [Fact]
    public void RewardIsExactAndTotal()
    {
        var p = new Problem("37+58=", "95", "95");
        Assert.Equal(1.0, Task.Reward(p, Ids("95")));
        Assert.Equal(0.0, Task.Reward(p, Ids("96")));
        Assert.Equal(0.0, Task.Reward(p, Ids("095")));
        Assert.Equal(0.0, Task.Reward(p, Task.Chars.Encode("95")));        // no EOS: cut off
        Assert.Equal(0.0, Task.Reward(p, [.. Ids("95"), 2]));                  // trailing junk
        Assert.Equal(0.0, Task.Reward(p, []));
        Assert.Equal(0.0, Task.Reward(p, [2]));
        Assert.Equal(0.0, Task.Reward(p, [-5, 1000, 2]));
        Assert.Equal(0.0, Task.Reward(p, [0, 0, 2]));
        Assert.Equal([1, .. Task.Chars.Encode("37+58=")], Task.EncodePrompt(p));
        Assert.Equal(Ids("95"), Task.EncodeSolution(p));
    }

    [Fact]
    public void ConfigIsValidatedAndFingerprinted()
    {
        Assert.Throws<UserError>(() => new ArithmeticTask(new ArithmeticTaskConfig { Operators = "*" }));
        Assert.Throws<UserError>(() => new ArithmeticTask(new ArithmeticTaskConfig { MaxDigits = 1, TestSize = 100 }));
        Assert.NotEqual(Task.Fingerprint, new ArithmeticTask(new ArithmeticTaskConfig { TestSeed = 1 }).Fingerprint);
    }
}

using System.Text.Json;

namespace EmaPg.Tests.Cli;

[Collection("console")]
public sealed class RewardCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emapg-reward-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Input(params string[] lines)
    {
        var p = Path.Combine(_dir, "cases.jsonl");
        File.WriteAllLines(p, lines);
        return p;
    }

    private static readonly string[] Cases =
    [
        """{"response": "so $\\boxed{\\dfrac{\\sqrt3}{2}}$", "ground_truth": "\\frac{\\sqrt{3}}{2}"}""",
        """{"response": "\\boxed{(x+1)^2}", "ground_truth": "x^2+2x+1"}""",
        "",
        """{"response": "<answer>7</answer> \\boxed{7}", "golden_answers": ["6", "8"]}""",
        """{"response": "<answer>The Paris</answer>", "golden_answers": ["paris"]}""",
    ];

    [Fact]
    public void Prints_one_score_line_per_case()
    {
        var (code, stdout, stderr) = CliRunner.Run("reward", "math", "--input", Input(Cases));
        Assert.Equal(0, code);
        Assert.Equal(["{\"score\":1}", "{\"score\":1}", "{\"score\":0}", "{\"score\":0}"], stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("reward 'math': 4 calls, 0 scored 0 by failure", stderr);
    }

    [Fact]
    public void Json_gives_every_score_and_the_failure_counts()
    {
        var (code, stdout, _) = CliRunner.Run("reward", "exact-match", "--input", Input(Cases), "--json");
        Assert.Equal(0, code);
        var o = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal([0.0, 0.0, 0.0, 1.0], o.GetProperty("scores").EnumerateArray().Select(e => e.GetDouble()));
        Assert.Equal(4, o.GetProperty("calls").GetInt32());
        Assert.Equal(0, o.GetProperty("timeouts").GetInt32());
    }

    [Fact]
    public void External_reward_runs_the_command()
    {
        var script = Path.Combine(AppContext.BaseDirectory, "Fixtures", "rewards", "external_reward.py");
        var (code, stdout, stderr) = CliRunner.Run("reward", "external", "--command", $"python3 '{script}'", "--timeout", "20", "--input",
            Input("""{"response": "42", "ground_truth": "42"}""", """{"response": "GARBAGE", "ground_truth": "x"}"""));
        Assert.Equal(0, code);
        Assert.Equal(["{\"score\":1}", "{\"score\":0}"], stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("(0 exceptions, 0 timeouts, 1 non-numbers)", stderr);
    }

    [Theory]
    [InlineData("""{"response": "x", "ground_truth": "1"}|{"response": 5, "ground_truth": "1"}""", "cases.jsonl:2: \"response\" must be a string.")]
    [InlineData("""{"response": "x"}""", "cases.jsonl:1: needs \"ground_truth\" or \"golden_answers\".")]
    [InlineData("{\"response\": \"x\", \"ground_truth\": \"1\"", "cases.jsonl:1: not valid JSON")]
    public void Malformed_input_is_a_user_error_naming_file_and_line(string content, string expected)
    {
        var (code, _, stderr) = CliRunner.Run("reward", "math", "--input", Input(content.Split('|')));
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
    }

    [Fact]
    public void Unknown_reward_and_bad_options_are_user_errors()
    {
        var input = Input(Cases);
        Assert.Contains("unknown reward 'maths'; known rewards: math, exact-match, arithmetic, external.", CliRunner.Run("reward", "maths", "--input", input).Err);
        Assert.Contains("needs --command", CliRunner.Run("reward", "external", "--input", input).Err);
        Assert.Contains("--timeout must be in (0, 3600]", CliRunner.Run("reward", "math", "--timeout", "0", "--input", input).Err);
        Assert.Contains("does not exist", CliRunner.Run("reward", "math", "--input", Path.Combine(_dir, "none.jsonl")).Err);
    }
}

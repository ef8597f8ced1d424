using EmaPg.Common;
using EmaPg.Tasks;
using EmaPg.Training;

namespace EmaPg.Tests.Training;

/// <summary>What a config's task keys build: the word-problems task over the real Qwen3 tokenizer and chat template, and the errors of impossible combinations.</summary>
public sealed class RunInputsTests
{
    private static TrainConfig WordProblems() => ConfigFile.Resolve("word-problems", null, []);

    [Fact]
    public void Word_problems_are_chat_prompts_whose_reference_solutions_the_math_reward_grades_correct()
    {
        using var inputs = RunInputs.Create(WordProblems());
        var task = inputs.Task;
        var tok = task.Tokenizer;
        Assert.Equal(151669, tok.VocabSize);
        Assert.Equal("qwen3", inputs.ModelConfig.Model.Architecture);
        Assert.True(inputs.ModelConfig.Model.VocabSize >= tok.VocabSize);
        Assert.Equal(256, task.TestSplit.Count);

        var p = task.TestSplit[0];
        Assert.StartsWith("<|im_start|>user\n", p.Prompt);
        Assert.EndsWith("within \\boxed{}.<|im_end|>\n<|im_start|>assistant\n", p.Prompt);
        int imEnd = tok.Encode("<|im_end|>").Single();
        var solution = task.EncodeSolution(p);
        Assert.Equal(imEnd, solution[^1]);   // the assistant turn is closed, and generation stops there

        // The generator's own worked solutions, round-tripped through the tokenizer, are graded correct by `math`;
        // a solution of another problem (a different answer) is not.
        var rng = new Random(3);
        foreach (var q in task.TestSplit.Take(64).Concat(Enumerable.Range(0, 64).Select(_ => task.SampleTrain(rng))))
            Assert.Equal(1.0, task.Reward(q, task.EncodeSolution(q)));
        var other = task.TestSplit.First(q => q.Answer != p.Answer);
        Assert.Equal(0.0, task.Reward(p, task.EncodeSolution(other)));
        Assert.Equal(0.0, task.Reward(p, []));
    }

    [Fact]
    public void The_training_stream_never_contains_a_test_question()
    {
        using var inputs = RunInputs.Create(WordProblems());
        var test = inputs.Task.TestSplit.Select(q => q.Prompt).ToHashSet();
        var rng = new Random(7);
        Assert.DoesNotContain(Enumerable.Range(0, 2000).Select(_ => inputs.Task.SampleTrain(rng).Prompt), test.Contains);
    }

    [Fact]
    public void Impossible_task_settings_name_the_keys()
    {
        var c = new TrainConfig();
        Assert.Contains("tokenizer", Assert.Throws<UserError>(() => ConfigSchema.CrossValidate(c with { Tokenizer = "qwen3" })).Message);
        Assert.Contains("reward", Assert.Throws<UserError>(() => ConfigSchema.CrossValidate(c with { Reward = "math" })).Message);
        Assert.Contains("reward_command", Assert.Throws<UserError>(() => ConfigSchema.CrossValidate(WordProblems() with { Reward = "external" })).Message);
        Assert.Contains("tokenizer must be auto", Assert.Throws<UserError>(() => ConfigSchema.CrossValidate(c with { Task = "dataset", Data = "/x", EvalData = "/y", Model = "/m", Tokenizer = "qwen3" })).Message);
        var e = Assert.Throws<UserError>(() => RunInputs.Create(WordProblems() with { Tokenizer = "/no/such/folder" }));
        Assert.Contains("/no/such/folder", e.Message);
    }
}

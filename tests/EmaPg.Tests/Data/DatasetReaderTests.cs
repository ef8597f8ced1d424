using EmaPg.Common;
using EmaPg.Data;
using EmaPg.Tokenization;
using Parquet.Schema;
using Parquet.Serialization;

namespace EmaPg.Tests.Data;

public sealed class DatasetReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emapg-data-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, params string[] lines)
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllLines(p, lines);
        return p;
    }

    // A stand-in for a model's chat template: tags that make the rendering visible; tokens = words.
    private static readonly PromptRenderer Tagged = new(
        m => string.Concat(m.Select(x => $"<|{x.Role}|>{x.Content}")) + "<|assistant|>",
        s => s.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);

    [Fact]
    public void Plain_schema_question_and_answer_with_chat_template_and_suffix()
    {
        var p = Write("plain.jsonl", """{"question": "What is 2+2?", "answer": "4"}""", "", """{"question": "Name a prime.", "answers": ["2", "3"], "data_source": "toy"}""");
        var d = DatasetReader.Load(p, new DatasetOptions { InstructionSuffix = DatasetOptions.DeepScaleRInstruction }, Tagged);
        Assert.Equal(2, d.Examples.Count);
        Assert.Equal("<|user|>What is 2+2? Let's think step by step and output the final answer within \\boxed{}.<|assistant|>", d.Examples[0].PromptText);
        Assert.Equal(["4"], d.Examples[0].GroundTruths);
        Assert.Equal(["2", "3"], d.Examples[1].GroundTruths);
        Assert.Equal("toy", d.Examples[1].DataSource);
        Assert.Equal($"{p}:3", d.Examples[1].Origin);
        Assert.Equal(new DatasetReport(p, 2, 2, 0, 1, 15), d.Report);
    }

    [Fact]
    public void Verl_schema_in_jsonl_with_messages_ground_truth_path_and_extra_info()
    {
        var p = Write("verl.jsonl", """{"data_source": "math", "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"}], "reward_model": {"style": "rule", "ground_truth": "2"}, "extra_info": {"index": 7}}""");
        var d = DatasetReader.Load(p, new DatasetOptions(), Tagged);
        var e = Assert.Single(d.Examples);
        Assert.Equal([new ChatMessage("system", "Be brief."), new ChatMessage("user", "1+1?")], e.Messages);
        Assert.Equal("<|system|>Be brief.<|user|>1+1?<|assistant|>", e.PromptText);
        Assert.Equal(["2"], e.GroundTruths);
        Assert.Equal(7, e.ExtraInfo!["index"]!.GetValue<int>());
        var raw = DatasetReader.Load(p, new DatasetOptions { NoChatTemplate = true }, Tagged);
        Assert.Equal("Be brief.\n1+1?", raw.Examples[0].PromptText);
    }

    [Fact]
    public void Field_options_name_other_fields_including_dotted_paths()
    {
        var p = Write("custom.jsonl", """{"q": {"text": "Capital of France?"}, "gold": ["Paris"], "src": "qa"}""");
        var d = DatasetReader.Load(p, new DatasetOptions { PromptField = "q.text", AnswerField = "gold", DataSourceField = "src" }, PromptRenderer.Plain);
        Assert.Equal("Capital of France?", d.Examples[0].PromptText);
        Assert.Equal(["Paris"], d.Examples[0].GroundTruths);
        Assert.Equal("qa", d.Examples[0].DataSource);
        var e = Assert.Throws<UserError>(() => DatasetReader.Load(p, new DatasetOptions { PromptField = "question" }, PromptRenderer.Plain));
        Assert.Equal($"{p}:1: no prompt field 'question' (fields: q, gold, src).", e.Message);
    }

    [Fact]
    public void Over_long_prompts_are_skipped_and_counted_or_an_error()
    {
        var p = Write("len.jsonl", """{"question": "one two three", "answer": "1"}""", """{"question": "one two three four five six", "answer": "2"}""");
        var d = DatasetReader.Load(p, new DatasetOptions { MaxPromptTokens = 4, NoChatTemplate = true }, Tagged);
        Assert.Equal(["1"], d.Examples.Single().GroundTruths);
        Assert.Equal((2, 1, 1), (d.Report.Rows, d.Report.Loaded, d.Report.SkippedTooLong));
        var e = Assert.Throws<UserError>(() => DatasetReader.Load(p, new DatasetOptions { MaxPromptTokens = 4, NoChatTemplate = true, OverLength = OverLengthPolicy.Error }, Tagged));
        Assert.StartsWith($"{p}:2: the prompt has 6 tokens, more than --max-prompt-length 4", e.Message);
    }

    [Theory]
    [InlineData("""{"question": "x", "answer": "1"}|{"question": "y", "answer": }""", ":2: not valid JSON")]
    [InlineData("""[1, 2]""", ":1: expected a JSON object")]
    [InlineData("""{"question": "x"}""", ":1: no ground truth field; looked for reward_model.ground_truth, answer, answers, golden_answers")]
    [InlineData("""{"answer": "x"}""", ":1: no prompt field; looked for prompt, question")]
    [InlineData("""{"prompt": [{"role": "user"}], "answer": "1"}""", ":1: field 'prompt': message 0 must be an object with string \"role\" and \"content\"")]
    [InlineData("""{"prompt": [], "answer": "1"}""", ":1: field 'prompt' must be a string or a non-empty list")]
    [InlineData("""{"question": "x", "answer": {"a": 1}}""", ":1: field 'answer': a ground truth must be a string, a number or a list of them")]
    [InlineData("""{"question": "x", "answers": []}""", ":1: field 'answers' holds no ground truth")]
    public void Malformed_lines_are_errors_naming_file_and_line(string content, string expected)
    {
        var p = Write("bad.jsonl", content.Split('|'));
        var e = Assert.Throws<UserError>(() => DatasetReader.Load(p, new DatasetOptions(), PromptRenderer.Plain));
        Assert.StartsWith(p + expected, e.Message);
    }

    [Fact]
    public void Empty_split_missing_file_and_unknown_format_are_errors()
    {
        var empty = Write("empty.jsonl", "", "  ");
        Assert.Contains("holds no examples", Assert.Throws<UserError>(() => DatasetReader.Load(empty, new(), PromptRenderer.Plain)).Message);
        Assert.Contains("does not exist", Assert.Throws<UserError>(() => DatasetReader.Load(Path.Combine(_dir, "none.jsonl"), new(), PromptRenderer.Plain)).Message);
        var csv = Write("x.csv", "a,b");
        Assert.Contains("unknown format '.csv'", Assert.Throws<UserError>(() => DatasetReader.Load(csv, new(), PromptRenderer.Plain)).Message);
        Assert.Contains("--prompt-field", Assert.Throws<UserError>(() => DatasetReader.Load(csv, new() { PromptField = "a..b" }, PromptRenderer.Plain)).Message);
    }

    /// <summary>verl's RL parquet layout (as written by its data preprocessors): prompt list&lt;struct&lt;role, content&gt;&gt;, reward_model struct, extra_info struct.</summary>
    internal static ParquetSchema VerlSchema() => new(
        new DataField<string>("data_source"),
        new ListField("prompt", new StructField("element", new DataField<string>("content"), new DataField<string>("role"))),
        new DataField<string>("ability"),
        new StructField("reward_model", new DataField<string>("ground_truth"), new DataField<string>("style")),
        new StructField("extra_info", new DataField<long>("index"), new DataField<string>("split")));

    internal static Dictionary<string, object?> VerlRow(string question, string truth, long index) => new()
    {
        ["data_source"] = "agentica-org/DeepScaleR-Preview-Dataset",
        ["prompt"] = new List<Dictionary<string, object>> { new() { ["content"] = question, ["role"] = "user" } },
        ["ability"] = "math",
        ["reward_model"] = new Dictionary<string, object> { ["ground_truth"] = truth, ["style"] = "rule" },
        ["extra_info"] = new Dictionary<string, object> { ["index"] = index, ["split"] = "train" },
    };

    [Fact]
    public async Task Reads_verl_rl_parquet()
    {
        var p = Path.Combine(_dir, "train.parquet");
        await using (var f = File.Create(p))
            await ParquetSerializer.SerializeUntypedAsync([VerlRow("What is $1+1$?", "2", 0), VerlRow("Half of 1?", "\\frac{1}{2}", 1)], VerlSchema(), f);
        var d = DatasetReader.Load(p, new DatasetOptions { InstructionSuffix = DatasetOptions.DeepScaleRInstruction }, Tagged);
        Assert.Equal(2, d.Examples.Count);
        Assert.Equal("<|user|>Half of 1? " + DatasetOptions.DeepScaleRInstruction + "<|assistant|>", d.Examples[1].PromptText);
        Assert.Equal(["\\frac{1}{2}"], d.Examples[1].GroundTruths);
        Assert.Equal("agentica-org/DeepScaleR-Preview-Dataset", d.Examples[0].DataSource);
        Assert.Equal(1L, d.Examples[1].ExtraInfo!["index"]!.GetValue<long>());
        Assert.Equal($"{p}: row 1", d.Examples[1].Origin);
    }

    [Fact]
    public async Task A_malformed_parquet_row_names_the_row()
    {
        var p = Path.Combine(_dir, "bad.parquet");
        var bad = VerlRow("q", "1", 1);
        ((Dictionary<string, object>)bad["reward_model"]!).Remove("ground_truth");
        var schema = new ParquetSchema(new DataField<string>("data_source"),
            new ListField("prompt", new StructField("element", new DataField<string>("content"), new DataField<string>("role"))),
            new DataField<string>("ability"),
            new StructField("reward_model", new DataField<string>("ground_truth", nullable: true), new DataField<string>("style")),
            new StructField("extra_info", new DataField<long>("index"), new DataField<string>("split")));
        await using (var f = File.Create(p))
            await ParquetSerializer.SerializeUntypedAsync([VerlRow("q", "1", 0), bad], schema, f);
        var e = Assert.Throws<UserError>(() => DatasetReader.Load(p, new DatasetOptions(), PromptRenderer.Plain));
        Assert.StartsWith($"{p}: row 1: no ground truth field", e.Message);
        File.WriteAllText(p, "not parquet");
        Assert.Contains("not a readable Parquet file", Assert.Throws<UserError>(() => DatasetReader.Load(p, new DatasetOptions(), PromptRenderer.Plain)).Message);
    }

    [Fact]
    public void Reference_responses_come_from_a_solution_field_or_a_trailing_assistant_message()
    {
        var p = Write("sft.jsonl",
            """{"question": "2+2?", "answer": "4", "solution": "2 + 2 = 4. \\boxed{4}"}""",
            """{"messages": [{"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "\\boxed{6}"}], "answer": "6"}""",
            """{"question": "1+1?", "answer": "2", "response": "\\boxed{2}"}""",
            """{"question": "5+5?", "answer": "10"}""");
        var d = DatasetReader.Load(p, new DatasetOptions(), Tagged);
        Assert.Equal("2 + 2 = 4. \\boxed{4}", d.Examples[0].Solution);
        // The conversation's last assistant turn is the response; the prompt is what came before it.
        Assert.Equal("\\boxed{6}", d.Examples[1].Solution);
        Assert.Equal("<|user|>3+3?<|assistant|>", d.Examples[1].PromptText);
        Assert.Equal("\\boxed{2}", d.Examples[2].Solution);
        Assert.Null(d.Examples[3].Solution);

        var named = DatasetReader.Load(Write("named.jsonl", """{"q": "2+2?", "a": "4", "worked": "2 + 2 = 4"}"""), new DatasetOptions { PromptField = "q", AnswerField = "a", SolutionField = "worked" }, Tagged);
        Assert.Equal("2 + 2 = 4", named.Examples[0].Solution);
        var e = Assert.Throws<UserError>(() => DatasetReader.Load(Write("nosol.jsonl", """{"question": "q", "answer": "1"}"""), new DatasetOptions { SolutionField = "worked" }, Tagged));
        Assert.Contains("nosol.jsonl:1", e.Message);
        Assert.Contains("'worked'", e.Message);
    }
}

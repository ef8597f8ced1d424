using System.Text.Json;
using EmaPg.Tests.Tokenization;
using static EmaPg.Tests.Tokenization.TokenizerFixtures;

namespace EmaPg.Tests.Cli;

[Collection("console")]
public class TokenizeCommandTests
{
    [Fact]
    public void JsonlTextsAndChatsGiveHfsIdsAndRenderedTexts()
    {
        var golden = Golden("qwen3");
        var encodings = golden.GetProperty("encodings").EnumerateArray().ToList();
        var chats = golden.GetProperty("chats").EnumerateArray().ToList();
        var texts = new[] { "👨‍👩‍👧‍👦", "a\r\nb\r\n", "text <|im_end|> more", "9" + new string('9', 119), "e\u0301" };
        var lines = new List<string>();
        var expected = new List<(string? Text, int[] Ids)>();
        foreach (var t in texts)
        {
            var e = encodings.Single(x => x.GetProperty("text").GetString() == t);
            lines.Add(JsonSerializer.Serialize(new { text = t }));
            expected.Add((null, Ints(e.GetProperty("ids"))));
        }
        foreach (var c in chats)
        {
            var line = new Dictionary<string, object> { ["messages"] = c.GetProperty("messages"), ["add_generation_prompt"] = c.GetProperty("add_generation_prompt").GetBoolean() };
            if (c.TryGetProperty("enable_thinking", out var th)) line["enable_thinking"] = th.GetBoolean();
            lines.Add(JsonSerializer.Serialize(line));
            expected.Add((c.GetProperty("text").GetString(), Ints(c.GetProperty("ids"))));
        }
        lines.Insert(2, "");   // blank lines are skipped
        string file = Path.Combine(Path.GetTempPath(), $"emapg-tokenize-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(file, lines);
        try
        {
            var (code, stdout, stderr) = CliRunner.Run("tokenize", "--model", ModelDir("qwen3"), "--input", file, "--json");
            Assert.True(code == 0, stderr);
            var outputs = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(expected.Count, outputs.Length);
            for (int i = 0; i < outputs.Length; i++)
            {
                var o = JsonDocument.Parse(outputs[i]).RootElement;
                var keys = o.EnumerateObject().Select(p => p.Name).ToArray();
                Assert.Equal(expected[i].Text is null ? ["ids"] : new[] { "text", "ids" }, keys);
                Assert.Equal(expected[i].Ids, Ints(o.GetProperty("ids")));
                if (expected[i].Text is { } t) Assert.Equal(t, o.GetProperty("text").GetString());
            }
            Assert.Contains($"{expected.Count} input(s), {expected.Sum(e => e.Ids.Length)} tokens", stderr);
            Assert.Contains("tokens/s", stderr);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void TextPrintsIdsAndJsonPrintsOneObject()
    {
        var e = Golden("llama3").GetProperty("encodings").EnumerateArray().Single(x => x.GetProperty("text").GetString() == "12345678901234567890");
        var ids = Ints(e.GetProperty("ids"));
        var (code, stdout, stderr) = CliRunner.Run("tokenize", "--model", ModelDir("llama3"), "--text", "12345678901234567890");
        Assert.True(code == 0, stderr);
        Assert.Equal(string.Join(' ', ids), stdout.Trim());
        (code, stdout, _) = CliRunner.Run("tokenize", "--model", ModelDir("llama3"), "--text", "12345678901234567890", "--json");
        Assert.Equal(0, code);
        Assert.Equal(JsonSerializer.Serialize(new { ids }), stdout.Trim());
    }

    [Fact]
    public void BadInputsAreUserErrorsNamingFileAndLine()
    {
        string file = Path.Combine(Path.GetTempPath(), $"emapg-tokenize-{Guid.NewGuid():N}.jsonl");
        string model = ModelDir("qwen2_5");
        try
        {
            File.WriteAllText(file, "{\"text\":\"ok\"}\n{\"text\": \"unterminated}\n");
            var (code, stdout, err) = CliRunner.Run("tokenize", "--model", model, "--input", file, "--json");
            Assert.Equal(2, code);
            Assert.Contains($"{file}:2: malformed JSON", err);
            Assert.DoesNotContain("   at ", err);
            Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));   // line 1 was already written
        }
        finally { File.Delete(file); }
        var (c1, _, e1) = CliRunner.Run("tokenize", "--model", model);
        Assert.Equal(2, c1);
        Assert.Contains("exactly one of --text T or --input FILE.jsonl", e1);
        var (c2, _, e2) = CliRunner.Run("tokenize", "--model", "/nonexistent/model", "--text", "x");
        Assert.Equal(2, c2);
        Assert.Contains("'/nonexistent/model' does not exist", e2);
        var (c3, _, e3) = CliRunner.Run("tokenize", "--model", model, "--input", "/nonexistent.jsonl");
        Assert.Equal(2, c3);
        Assert.Contains("'/nonexistent.jsonl' does not exist", e3);
    }
}

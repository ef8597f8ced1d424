using EmaPg.Common;
using EmaPg.Tokenization;

namespace EmaPg.Tests.Tokenization;

/// <summary>The tokenize verb's JSONL lines: what they mean, and errors that name file and line.</summary>
public class TokenizeRequestsTests
{
    [Fact]
    public void LinesParseToTextsAndChats()
    {
        var t = Assert.IsType<TokenizeRequest.Text>(TokenizeRequests.ParseLine("{\"text\":\"a\\r\\n😀\"}", "f:1"));
        Assert.Equal("a\r\n😀", t.Value);
        var c = Assert.IsType<TokenizeRequest.Chat>(TokenizeRequests.ParseLine(
            "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\",\"reasoning_content\":\"r\"}],\"enable_thinking\":false}", "f:1"));
        Assert.Equal([new ChatMessage("user", "q"), new ChatMessage("assistant", "a", "r")], c.Messages);
        Assert.False(c.AddGenerationPrompt);   // transformers' default
        Assert.False(c.EnableThinking);
        c = Assert.IsType<TokenizeRequest.Chat>(TokenizeRequests.ParseLine("{\"messages\":[],\"add_generation_prompt\":true}", "f:1"));
        Assert.True(c.AddGenerationPrompt);
        Assert.Null(c.EnableThinking);         // left undefined in the template
    }

    [Theory]
    [InlineData("{\"text\": \"unterminated}", "f.jsonl:7: malformed JSON")]
    [InlineData("{\"txt\":\"x\"}", "f.jsonl:7: each line needs exactly one of \"text\" or \"messages\"")]
    [InlineData("{\"text\":\"a\",\"messages\":[]}", "f.jsonl:7: each line needs exactly one of")]
    [InlineData("{\"text\":\"a\",\"extra\":1}", "f.jsonl:7: unknown key \"extra\" (allowed: text)")]
    [InlineData("{\"text\":3}", "f.jsonl:7: \"text\" must be a string, got number")]
    [InlineData("{\"messages\":{}}", "f.jsonl:7: \"messages\" must be an array")]
    [InlineData("{\"messages\":[{\"role\":\"user\"}]}", "f.jsonl:7: messages[0] needs \"role\" and \"content\"")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}]}", "f.jsonl:7: messages[0]: unknown key \"tool_calls\"")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":null}]}", "f.jsonl:7: \"messages[0].content\" must be a string, got null")]
    [InlineData("{\"messages\":[\"hi\"]}", "f.jsonl:7: messages[0] must be an object")]
    [InlineData("{\"messages\":[],\"add_generation_prompt\":\"yes\"}", "f.jsonl:7: \"add_generation_prompt\" must be true or false, got string")]
    [InlineData("[1,2]", "f.jsonl:7: each line must be a JSON object")]
    public void MalformedLinesNameFileAndLine(string line, string expected)
    {
        var e = Assert.Throws<UserError>(() => TokenizeRequests.ParseLine(line, "f.jsonl:7"));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ReadJsonlCountsLinesIncludingBlankOnes()
    {
        string file = Path.Combine(Path.GetTempPath(), $"emapg-req-{Guid.NewGuid():N}.jsonl");
        File.WriteAllText(file, "{\"text\":\"a\"}\n\n   \n{\"text\":1}\n");
        try
        {
            using var it = TokenizeRequests.ReadJsonl(file).GetEnumerator();
            Assert.True(it.MoveNext());
            var e = Assert.Throws<UserError>(() => it.MoveNext());
            Assert.StartsWith($"{file}:4: ", e.Message);
        }
        finally { File.Delete(file); }
        Assert.Throws<UserError>(() => TokenizeRequests.ReadJsonl("/nonexistent.jsonl"));
    }
}

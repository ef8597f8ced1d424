using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;
using EmaPg.Tokenization;
using static EmaPg.Tests.Tokenization.TokenizerFixtures;

namespace EmaPg.Tests.Tokenization;

/// <summary>
/// The renderers against Jinja2 configured as transformers (Fixtures/hf/chat-jinja.json, tools/goldens/jinja_goldens.py,
/// which first checks that configuration against transformers' own goldens) on every template branch, and recognition.
/// </summary>
public class ChatTemplateTests
{
    private static readonly JsonElement Jinja = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(FixtureDir, "hf", "chat-jinja.json"))).RootElement;

    private static string BaseTemplate(string baseName) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(ModelDir(baseName), "tokenizer_config.json")))!["chat_template"]!.GetValue<string>();

    public static IEnumerable<object[]> TemplateNames() => Jinja.GetProperty("templates").EnumerateArray().Select(t => new object[] { t.GetProperty("name").GetString()! });

    [Theory]
    [MemberData(nameof(TemplateNames))]
    public void RendersEqualJinjaOnEveryCase(string name)
    {
        var t = Jinja.GetProperty("templates").EnumerateArray().Single(x => x.GetProperty("name").GetString() == name);
        string template = BaseTemplate(t.GetProperty("base").GetString()!);
        foreach (var r in t.GetProperty("replacements").EnumerateArray())
            template = template.Replace(r[0].GetString()!, r[1].GetString()!);
        var bos = t.GetProperty("bos_token").ValueKind == JsonValueKind.String ? t.GetProperty("bos_token").GetString() : null;
        var chat = ChatTemplate.Recognise(template, name, bos);
        Assert.Equal(t.GetProperty("format").GetString(), chat.Format);
        var failures = new List<string>();
        int n = 0;
        foreach (var r in t.GetProperty("renders").EnumerateArray())
        {
            n++;
            bool? thinking = r.TryGetProperty("enable_thinking", out var th) ? th.GetBoolean() : null;
            string got = chat.Render(Messages(r.GetProperty("messages")), r.GetProperty("add_generation_prompt").GetBoolean(), thinking);
            string want = r.GetProperty("text").GetString()!;
            if (got != want) failures.Add($"render {n} ({r.GetProperty("messages").GetRawText()}, agp {r.GetProperty("add_generation_prompt")}, thinking {thinking}):\n  expected {JsonSerializer.Serialize(want)}\n  got      {JsonSerializer.Serialize(got)}");
        }
        Assert.True(n >= 36);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Theory]
    [InlineData("qwen3", "<|im_start|>assistant\\n", "<|im_start|>assistant \\n")]
    [InlineData("qwen3", "{%- if tools %}", "{%- if tools and true %}")]
    [InlineData("qwen2_5", "<|im_start|>user", "<|im_start|>human")]
    [InlineData("qwen2_5", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>", "Other prompt.<|im_end|>")]   // the two default prompts differ
    [InlineData("llama3", "| trim", "")]
    [InlineData("llama3", "<|eot_id|>", "<|eom_id|>")]
    public void AnyOtherTemplateIsAUserErrorNamingItsFile(string baseName, string from, string to)
    {
        string template = BaseTemplate(baseName);
        Assert.Contains(from, template);
        var e = Assert.Throws<UserError>(() => ChatTemplate.Recognise(template.Replace(from, to), "/models/x/tokenizer_config.json", "<|begin_of_text|>"));
        Assert.Contains("/models/x/tokenizer_config.json: unrecognised chat template", e.Message);
        Assert.Contains("Qwen2.5, Qwen3 and Llama 3", e.Message);
    }

    [Fact]
    public void ChatTemplateJinjaFileWinsAndMissingTemplatesAreReported()
    {
        using var dir = new TempModelDir();
        File.CreateSymbolicLink(Path.Combine(dir.Path, "tokenizer.json"), Path.Combine(ModelDir("qwen3"), "tokenizer.json"));
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(ModelDir("qwen3"), "tokenizer_config.json")))!.AsObject();
        string qwen3Template = cfg["chat_template"]!.GetValue<string>();
        cfg.Remove("chat_template");
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"), cfg.ToJsonString());
        using (var none = HfTokenizer.Load(dir.Path))
        {
            Assert.Null(none.ChatTemplate);
            var e = Assert.Throws<UserError>(() => TokenizeRequests.Run(none, new TokenizeRequest.Chat([new ChatMessage("user", "x")], true, null), false));
            Assert.Contains("no chat template", e.Message);
        }
        File.WriteAllText(Path.Combine(dir.Path, "chat_template.jinja"), qwen3Template);
        using (var withFile = HfTokenizer.Load(dir.Path)) Assert.Equal("qwen3", withFile.ChatTemplate!.Format);
        File.WriteAllText(Path.Combine(dir.Path, "chat_template.jinja"), "{{ messages }}");
        var err = Assert.Throws<UserError>(() => HfTokenizer.Load(dir.Path));
        Assert.Contains("chat_template.jinja: unrecognised chat template", err.Message);
    }

    [Fact]
    public void EmptyConversationIsAUserError()
    {
        var e = Assert.Throws<UserError>(() => Tokenizer("qwen3").ChatTemplate!.Render([], addGenerationPrompt: true));
        Assert.Contains("at least one message", e.Message);
    }
}

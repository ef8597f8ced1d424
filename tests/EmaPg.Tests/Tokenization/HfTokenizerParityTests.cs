using System.Text.Json;
using EmaPg.Tokenization;
using static EmaPg.Tests.Tokenization.TokenizerFixtures;

namespace EmaPg.Tests.Tokenization;

/// <summary>Every golden of HF tokenizers 0.23.2 / transformers 5.17.0 (Fixtures/hf/tokenizers/*.json), id for id and character for character.</summary>
public class HfTokenizerParityTests
{
    [Theory]
    [MemberData(nameof(NameData), MemberType = typeof(TokenizerFixtures))]
    public void EncodeAndDecodeEqualHfOnEveryGoldenText(string name)
    {
        var failures = EncodingFailures(Tokenizer(name), Golden(name).GetProperty("encodings"), out int n);
        Assert.Equal(96, n);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Theory]
    [MemberData(nameof(NameData), MemberType = typeof(TokenizerFixtures))]
    public void ChatTemplateTextAndIdsEqualApplyChatTemplate(string name)
    {
        var tok = Tokenizer(name);
        var failures = new List<string>();
        int n = 0;
        foreach (var c in Golden(name).GetProperty("chats").EnumerateArray())
        {
            n++;
            bool? thinking = c.TryGetProperty("enable_thinking", out var t) ? t.GetBoolean() : null;
            string text = tok.ChatTemplate!.Render(Messages(c.GetProperty("messages")), c.GetProperty("add_generation_prompt").GetBoolean(), thinking);
            string expected = c.GetProperty("text").GetString()!;
            if (text != expected) failures.Add($"chat {n}: expected {JsonSerializer.Serialize(expected)}, got {JsonSerializer.Serialize(text)}");
            if (!tok.Encode(expected).SequenceEqual(Ints(c.GetProperty("ids")))) failures.Add($"chat {n}: ids differ");
        }
        Assert.Equal(12, n);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Theory]
    [InlineData("qwen3", "qwen3", 151645, 151643, null)]
    [InlineData("qwen2_5", "qwen2.5", 151645, 151643, null)]
    [InlineData("llama3", "llama3", 128001, null, 128000)]
    public void SpecialIdsVocabularyAndFormatComeFromTheFiles(string name, string format, int eos, int? pad, int? bos)
    {
        var tok = Tokenizer(name);
        Assert.Equal(Golden(name).GetProperty("vocab_size_with_added").GetInt32(), tok.VocabSize);
        Assert.Equal([eos], tok.EosTokenIds);
        Assert.Equal(pad, tok.PadTokenId);
        Assert.Equal(bos, tok.BosTokenId);
        // These tokenizer.json files' post-processor is ByteLevel, which adds no token (ids_with_special == ids above).
        Assert.False(tok.AddsBosToken);
        Assert.Equal(format, tok.ChatTemplate!.Format);
    }
}

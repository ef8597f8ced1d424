using System.Text.Json.Nodes;
using EmaPg.Common;
using EmaPg.Tokenization;
using static EmaPg.Tests.Tokenization.TokenizerFixtures;

namespace EmaPg.Tests.Tokenization;

/// <summary>
/// Seeded random stress texts with HF tokenizers' (Node binding, 0.23.2) outputs (Fixtures/hf/tokenizers-npm,
/// tools/goldens/npm_goldens.js), and the loader's handling of what the model directory may hold.
/// </summary>
public class HfTokenizerStressTests
{
    [Theory]
    [MemberData(nameof(NameData), MemberType = typeof(TokenizerFixtures))]
    public void EncodeAndDecodeEqualHfOnEveryStressText(string name)
    {
        var failures = EncodingFailures(Tokenizer(name), NpmGolden(name).GetProperty("encodings"), out int n);
        Assert.Equal(435, n);
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches:\n" + string.Join("\n", failures.Take(20)));
    }

    [Fact]
    public void TemplateProcessingPostProcessorAddsBosOnlyWhenAsked()
    {
        var golden = NpmGolden("llama3-bos");
        using var dir = new TempModelDir();
        var tok = JsonNode.Parse(File.ReadAllText(Path.Combine(ModelDir("llama3"), "tokenizer.json")))!;
        tok["post_processor"] = JsonNode.Parse(golden.GetProperty("post_processor").GetRawText());
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer.json"), tok.ToJsonString());
        File.Copy(Path.Combine(ModelDir("llama3"), "tokenizer_config.json"), Path.Combine(dir.Path, "tokenizer_config.json"));
        using var t = HfTokenizer.Load(dir.Path);
        Assert.True(t.AddsBosToken);
        var failures = EncodingFailures(t, golden.GetProperty("encodings"), out int n);
        Assert.Equal(60, n);
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(20)));
        Assert.All(golden.GetProperty("encodings").EnumerateArray(), e => Assert.Equal(128000, e.GetProperty("ids_with_special")[0].GetInt32()));
    }

    [Fact]
    public void GenerationConfigEosListWins()
    {
        using var dir = TempModelDir.LinkedTo(ModelDir("qwen3"));
        File.WriteAllText(Path.Combine(dir.Path, "generation_config.json"), "{\"bos_token_id\": 151643, \"eos_token_id\": [151645, 151643], \"pad_token_id\": 151643}");
        using var t = HfTokenizer.Load(dir.Path);
        Assert.Equal([151645, 151643], t.EosTokenIds);
        File.WriteAllText(Path.Combine(dir.Path, "generation_config.json"), "{\"eos_token_id\": \"x\"}");
        var e = Assert.Throws<UserError>(() => HfTokenizer.Load(dir.Path));
        Assert.Contains("generation_config.json: eos_token_id must be an integer or a list of integers", e.Message);
    }

    [Fact]
    public void MissingFilesAndUnsupportedTokenizersAreUserErrors()
    {
        using var dir = new TempModelDir();
        var e = Assert.Throws<UserError>(() => HfTokenizer.Load(dir.Path));
        Assert.Contains("tokenizer.json' is missing", e.Message);
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer.json"), "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}, \"decoder\": {\"type\": \"Metaspace\"}}");
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"), "{}");
        e = Assert.Throws<UserError>(() => HfTokenizer.Load(dir.Path));
        Assert.Contains("only byte-level BPE tokenizers", e.Message);
        Assert.Contains("model 'Unigram', decoder 'Metaspace'", e.Message);
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer.json"), "{\"model\": ");
        e = Assert.Throws<UserError>(() => HfTokenizer.Load(dir.Path));
        Assert.Contains("tokenizer.json: malformed JSON", e.Message);
    }

    [Fact]
    public void UnpairedSurrogatesAreUserErrors()
    {
        var e = Assert.Throws<UserError>(() => Tokenizer("qwen3").Encode("a\ud800b"));
        Assert.Contains("unpaired surrogates", e.Message);
    }
}

/// <summary>A scratch model directory, deleted on dispose; LinkedTo symlinks a real one's files into it.</summary>
internal sealed class TempModelDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("emapg-model-").FullName;

    public static TempModelDir LinkedTo(string modelDir)
    {
        var d = new TempModelDir();
        foreach (var f in Directory.GetFiles(modelDir))
            File.CreateSymbolicLink(System.IO.Path.Combine(d.Path, System.IO.Path.GetFileName(f)), f);
        return d;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

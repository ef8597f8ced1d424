using System.Text.Json;
using EmaPg.Model.HuggingFace;
using EmaPg.Tests.Model.HuggingFace;

namespace EmaPg.Tests.Cli;

/// <summary>
/// `emapg model init|info|score|generate` end to end with the real Qwen3, Qwen2.5 and Llama 3 tokenizer
/// files, on the 2-layer, 64-wide variant of each named model (its vocabulary stays the real one).
/// </summary>
[Collection("console")]
public sealed class ModelCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "emapg-model-cli-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static readonly string[] Small =
        ["--set", "num_hidden_layers=2", "--set", "hidden_size=64", "--set", "intermediate_size=128",
         "--set", "num_attention_heads=4", "--set", "num_key_value_heads=2"];

    [Theory]
    [InlineData("qwen3-0.6b", "qwen3", "Qwen3ForCausalLM", 151936, 151669, "--set head_dim=16")]
    [InlineData("qwen2.5-0.5b", "qwen2_5", "Qwen2ForCausalLM", 151936, 151665, "")]
    [InlineData("llama-3.2-1b", "llama3", "LlamaForCausalLM", 128256, 128256, "--set head_dim=16")]
    public void Init_info_score_generate_and_reload_bit_exactly(string like, string tokenizer, string hfClass, int vocab, int tokenizerVocab, string extra)
    {
        var dir = Path.Combine(_dir, like);
        var args = new List<string> { "model", "init", "--like", like, "--tokenizer", HfFixtures.TokenizerDir(tokenizer), "--out", dir, "--seed", "7" };
        args.AddRange(Small);
        args.AddRange(extra.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var (code, _, err) = CliRunner.Run(args.ToArray());
        Assert.True(code == 0, err);
        Assert.True(File.Exists(Path.Combine(dir, "tokenizer.json")));
        Assert.True(File.Exists(Path.Combine(dir, "tokenizer_config.json")));

        (code, var stdout, err) = CliRunner.Run("model", "info", "--model", dir, "--json");
        Assert.True(code == 0, err);
        var info = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(hfClass, info.GetProperty("architecture").GetString());
        Assert.Equal("bfloat16", info.GetProperty("dtype").GetString());   // the real config's torch_dtype
        Assert.Equal(vocab, info.GetProperty("vocab_size").GetInt32());
        Assert.Equal(tokenizerVocab, info.GetProperty("tokenizer_vocab_size").GetInt32());
        Assert.Equal(2, info.GetProperty("num_hidden_layers").GetInt32());
        Assert.Contains(info.GetProperty("special_tokens").EnumerateArray(), t => t.GetProperty("role").GetString() == "eos" && t.GetProperty("ids").GetArrayLength() > 0);

        var ids = "9707,11,1879,0,374";
        (code, stdout, err) = CliRunner.Run("model", "score", "--model", dir, "--ids", ids, "--json");
        Assert.True(code == 0, err);
        var score = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal([9707, 11, 1879, 0, 374], score.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
        var positions = score.GetProperty("positions").EnumerateArray().ToList();
        Assert.Equal(5, positions.Count);
        foreach (var p in positions)
        {
            var lp = p.GetProperty("top_logprobs").EnumerateArray().Select(x => x.GetDouble()).ToList();
            Assert.Equal(20, lp.Count);
            Assert.Equal(20, p.GetProperty("top_ids").GetArrayLength());
            Assert.Equal(lp.OrderByDescending(x => x), lp);
            Assert.All(lp, x => Assert.True(x < 0 && x > -40));
        }

        // Greedy generation's first token is the full forward's top-1 after the prompt (KV-cached path vs uncached).
        (code, stdout, err) = CliRunner.Run("model", "generate", "--model", dir, "--ids", ids, "--max-new-tokens", "6", "--temperature", "0", "--json");
        Assert.True(code == 0, err);
        var greedy = JsonDocument.Parse(stdout).RootElement.GetProperty("new_ids").EnumerateArray().Select(x => x.GetInt32()).ToList();
        Assert.InRange(greedy.Count, 1, 6);
        Assert.Equal(positions[^1].GetProperty("top_ids")[0].GetInt32(), greedy[0]);

        // Sampling is reproducible for a seed.
        var sample = new[] { "model", "generate", "--model", dir, "--ids", ids, "--max-new-tokens", "6", "--temperature", "1", "--seed", "3", "--json" };
        Assert.Equal(CliRunner.Run(sample).Out, CliRunner.Run(sample).Out);

        // --text --chat tokenizes as transformers' apply_chat_template(add_generation_prompt=True) did (the committed golden).
        var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(EmaPg.Tests.Tokenization.TokenizerFixtures.FixtureDir, "hf", "tokenizers", tokenizer + ".json"))).RootElement
            .GetProperty("chats")[0];
        Assert.Equal("What is 2+2?", golden.GetProperty("messages")[0].GetProperty("content").GetString());
        var chatIds = golden.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToList();
        (code, stdout, err) = CliRunner.Run("model", "score", "--model", dir, "--text", "What is 2+2?", "--chat", "--top", "3", "--json");
        Assert.True(code == 0, err);
        Assert.Equal(chatIds, JsonDocument.Parse(stdout).RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
        (code, stdout, err) = CliRunner.Run("model", "generate", "--model", dir, "--prompt", "What is 2+2?", "--chat", "--max-new-tokens", "4", "--json");
        Assert.True(code == 0, err);
        var byText = JsonDocument.Parse(stdout).RootElement;
        (_, var byIds, _) = CliRunner.Run("model", "generate", "--model", dir, "--ids", string.Join(",", chatIds), "--max-new-tokens", "4", "--json");
        Assert.Equal(byText.GetProperty("new_ids").GetRawText(), JsonDocument.Parse(byIds).RootElement.GetProperty("new_ids").GetRawText());
        Assert.Equal(JsonValueKind.String, byText.GetProperty("text").ValueKind);
        (code, _, err) = CliRunner.Run("model", "score", "--model", dir, "--ids", "1", "--text", "x");
        Assert.Equal(2, code);
        Assert.Contains("exactly one of --ids and --text", err);

        // The folder the CLI wrote loads, saves and loads again bit-exactly.
        var copy = Path.Combine(_dir, like + "-copy");
        using (var m = HfCheckpoint.Load(dir)) HfCheckpoint.Save(m.Model, m.Config, copy, copyFilesFrom: dir);
        using var a = HfCheckpoint.Load(dir);
        using var b = HfCheckpoint.Load(copy);
        foreach (var ((n, p), (_, q)) in a.Model.named_parameters().Zip(b.Model.named_parameters()))
            Assert.True(p.bytes.SequenceEqual(q.bytes), n);
        Assert.Equal(File.ReadAllText(Path.Combine(dir, "config.json")), File.ReadAllText(Path.Combine(copy, "config.json")));
    }

    [Fact]
    public void Init_from_a_config_file_in_the_transformers_5_style_writes_the_4x_keys()
    {
        var dir = Path.Combine(_dir, "from-config");
        var config = Path.Combine(HfFixtures.ModelDir("llama3-tied"), "config.json");   // dtype + rope_parameters (llama3)
        var (code, _, err) = CliRunner.Run("model", "init", "--config", config, "--tokenizer", HfFixtures.TokenizerDir("llama3"),
            "--out", dir, "--set", "vocab_size=128256", "--dtype", "f32");
        Assert.True(code == 0, err);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        Assert.Equal("float32", json["torch_dtype"]!.GetValue<string>());
        Assert.Null(json["rope_parameters"]);
        Assert.Equal("llama3", json["rope_scaling"]!["rope_type"]!.GetValue<string>());
        Assert.Equal(128256, json["vocab_size"]!.GetValue<int>());
        var info = HfModelInfo.Read(dir);
        Assert.Equal("llama3", info.RopeScaling);
        Assert.Equal(16, info.HeadDim);
    }

    [Fact]
    public void Bad_input_is_named_without_a_stack_trace()
    {
        var tok = HfFixtures.TokenizerDir("qwen3");
        var (code, _, err) = CliRunner.Run("model", "init", "--like", "gpt-5", "--tokenizer", tok, "--out", Path.Combine(_dir, "x"));
        Assert.Equal(2, code);
        Assert.Contains("--like must be one of qwen2.5-0.5b, qwen2.5-1.5b, qwen3-0.6b, qwen3-1.7b, llama-3.2-1b, r1-distill-qwen-1.5b", err);
        Assert.DoesNotContain("   at ", err);

        (code, _, err) = CliRunner.Run("model", "init", "--tokenizer", tok, "--out", Path.Combine(_dir, "x"));
        Assert.Contains("exactly one of --like NAME and --config FILE", err);

        (code, _, err) = CliRunner.Run(["model", "init", "--like", "qwen3-0.6b", "--tokenizer", tok, "--out", Path.Combine(_dir, "x"), .. Small, "--set", "head_dim=16", "--set", "vocab_size=1000"]);
        Assert.Equal(2, code);
        Assert.Contains("vocab_size 1000 is smaller than the tokenizer's vocabulary (151669 ids", err);

        (code, _, err) = CliRunner.Run(["model", "init", "--like", "qwen3-0.6b", "--tokenizer", tok, "--out", Path.Combine(_dir, "x"), "--set", "rope_scaling={\"rope_type\":\"yarn\",\"factor\":4.0}"]);
        Assert.Contains("rope_scaling.rope_type 'yarn' is not supported", err);

        (code, _, err) = CliRunner.Run("model", "init", "--like", "qwen3-0.6b", "--tokenizer", tok, "--out", Path.Combine(_dir, "x"), "--dtype", "f64");
        Assert.Contains("--dtype must be one of", err);

        var dir = Path.Combine(_dir, "ok");
        (code, _, err) = CliRunner.Run(["model", "init", "--like", "qwen3-0.6b", "--tokenizer", tok, "--out", dir, "--dtype", "f32", .. Small, "--set", "head_dim=16"]);
        Assert.True(code == 0, err);
        (code, _, err) = CliRunner.Run("model", "score", "--model", dir, "--ids", "1,151936");
        Assert.Equal(2, code);
        Assert.Contains("token id 151936 is outside the model's vocabulary [0, 151935]", err);
        (code, _, err) = CliRunner.Run("model", "score", "--model", dir, "--ids", "1,2", "--top", "0");
        Assert.Contains("--top must be an integer in [1, 151936]", err);
        (code, _, err) = CliRunner.Run("model", "generate", "--model", dir, "--ids", "1", "--temperature", "-1");
        Assert.Contains("--temperature must be in [0, ∞]", err);
        (code, _, err) = CliRunner.Run("model", "info", "--model", Path.Combine(_dir, "nowhere"));
        Assert.Equal(2, code);
        Assert.Contains("config.json", err);
    }
}

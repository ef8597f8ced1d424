using System.Text.Json;
using EmaPg.Model.HuggingFace;
using EmaPg.Tests.Model.HuggingFace;
using EmaPg.Training;
using static TorchSharp.torch;

namespace EmaPg.Tests.Cli;

/// <summary>
/// A user's own model and data end to end: `model init` (a 1-layer Qwen3 with the real 151,669-id tokenizer), `sft` on a
/// JSONL file's solutions, `train --model --data --eval-data --reward`, the run's policy/ and anchor/ folders, and `eval`
/// of the run and of its policy folder.
/// </summary>
[Collection("console")]
public sealed class TrainOnDataCliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "emapg-data-cli-" + Guid.NewGuid().ToString("N"));

    public TrainOnDataCliTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private string P(string name) => Path.Combine(_dir, name);

    private string InitModel()
    {
        var (code, _, err) = CliRunner.Run("model", "init", "--like", "qwen3-0.6b", "--tokenizer", HfFixtures.TokenizerDir("qwen3"), "--out", P("base"), "--seed", "3",
            "--dtype", "float32", "--set", "num_hidden_layers=1", "--set", "hidden_size=32", "--set", "intermediate_size=64",
            "--set", "num_attention_heads=2", "--set", "num_key_value_heads=1", "--set", "head_dim=16");
        Assert.True(code == 0, err);
        return P("base");
    }

    private void WriteData()
    {
        var rows = Enumerable.Range(1, 8).Select(i => JsonSerializer.Serialize(new { question = $"What is {i} plus {i}?", answer = $"{2 * i}", solution = $"{i} + {i} = {2 * i}. The answer is \\boxed{{{2 * i}}}." }));
        File.WriteAllLines(P("train.jsonl"), rows);
        File.WriteAllLines(P("test.jsonl"), rows.Take(3));
    }

    private static string[] Small(params string[] more) =>
        ["--iterations", "2", "--prompts-per-iteration", "2", "--group-size", "2", "--max-new-tokens", "5", "--eval-problems", "3",
         "--eval-samples", "1", "--pass-k", "1", "--checkpoint-every", "1", "--kl-topk", "4", "--stability-monitor", "false", "--threads", "1", .. more];

    [Fact]
    public void Sft_train_and_eval_a_model_folder_on_a_jsonl_dataset()
    {
        var model = InitModel();
        WriteData();

        var (code, _, err) = CliRunner.Run("sft", "--model", model, "--data", P("train.jsonl"), "--out", P("sft"), "--sft-steps", "2", "--sft-batch", "4", "--threads", "1");
        Assert.True(code == 0, err);
        using (var loaded = HfCheckpoint.Load(P("sft")))
            Assert.Equal(151936, loaded.Config.Model.VocabSize);
        Assert.True(File.Exists(Path.Combine(P("sft"), "tokenizer.json")));

        (code, var stdout, err) = CliRunner.Run(["train", "--model", P("sft"), "--data", P("train.jsonl"), "--eval-data", P("test.jsonl"), "--reward", "math", "--out", P("run"), .. Small()]);
        Assert.True(code == 0, err + stdout);
        var summary = JsonDocument.Parse(File.ReadAllText(P("run/summary.json"))).RootElement;
        Assert.Equal(2, summary.GetProperty("iterations").GetInt32());

        // policy/ and anchor/ are Hugging Face folders holding exactly the checkpoint's tensors.
        using (var policy = HfCheckpoint.Load(P("run/policy")))
        using (var anchor = HfCheckpoint.Load(P("run/anchor")))
        {
            var tensors = new Dictionary<string, Tensor>();
            foreach (var (n, p) in policy.Model.named_parameters()) tensors["policy/" + n] = zeros_like(p);
            foreach (var (n, p) in anchor.Model.named_parameters()) tensors["anchor/" + n] = zeros_like(p);
            TrainerCheckpoint.Load(P("run/checkpoint.bin"), tensors, requireAll: false);
            foreach (var (n, p) in policy.Model.named_parameters()) Assert.True(EmaPg.Tests.Model.TinyModels.Same(tensors["policy/" + n], p), n);
            foreach (var (n, p) in anchor.Model.named_parameters()) Assert.True(EmaPg.Tests.Model.TinyModels.Same(tensors["anchor/" + n], p), n);
            Assert.True(File.Exists(Path.Combine(P("run/policy"), "tokenizer.json")));
        }

        // The run (its checkpoint) and its policy folder are the same model: the same seeded evaluation gives the same numbers.
        (code, stdout, err) = CliRunner.Run("eval", P("run"), "--samples", "2", "--k", "1,2", "--json", "--threads", "1");
        Assert.True(code == 0, err);
        var ofRun = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(2, ofRun.GetProperty("iteration").GetInt32());
        (code, stdout, err) = CliRunner.Run("eval", "--model", P("run/policy"), "--data", P("test.jsonl"), "--samples", "2", "--k", "1,2", "--json", "--threads", "1", "--max-new-tokens", "5");
        Assert.True(code == 0, err);
        var ofFolder = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(3, ofFolder.GetProperty("problems").GetInt32());
        Assert.Equal(ofRun.GetProperty("pass_at_k").GetRawText(), ofFolder.GetProperty("pass_at_k").GetRawText());
        Assert.Equal(ofRun.GetProperty("mean_reward").GetDouble(), ofFolder.GetProperty("mean_reward").GetDouble());
    }

    [Fact]
    public async Task Train_on_verl_parquet_files_with_the_exact_match_reward()
    {
        var model = InitModel();
        foreach (var (name, n) in new[] { ("train.parquet", 6), ("test.parquet", 3) })
        {
            await using var f = File.Create(P(name));
            await Parquet.Serialization.ParquetSerializer.SerializeUntypedAsync(
                Enumerable.Range(0, n).Select(i => EmaPg.Tests.Data.DatasetReaderTests.VerlRow($"Name the number {i}.", $"{i}", i)).ToList(),
                EmaPg.Tests.Data.DatasetReaderTests.VerlSchema(), f);
        }
        var (code, stdout, err) = CliRunner.Run(["train", "--model", model, "--data", P("train.parquet"), "--eval-data", P("test.parquet"), "--reward", "exact-match",
            "--out", P("run"), "--save-hf", "end", .. Small()]);
        Assert.True(code == 0, err + stdout);
        var config = File.ReadAllText(P("run/config"));
        Assert.Contains("reward = exact-match", config);
        Assert.Contains($"data = {P("train.parquet")}", config);   // stored absolute, so --resume works from anywhere
        Assert.True(File.Exists(P("run/policy/model.safetensors")));
        Assert.Equal(2, JsonDocument.Parse(File.ReadAllText(P("run/summary.json"))).RootElement.GetProperty("iterations").GetInt32());
    }

    [Fact]
    public void Dataset_settings_that_cannot_work_are_one_line_errors_before_anything_is_written()
    {
        WriteData();
        var (code, _, err) = CliRunner.Run("train", "--data", P("train.jsonl"), "--out", P("r1"));
        Assert.Equal(2, code);
        Assert.Contains("eval_data", err);
        Assert.False(Directory.Exists(P("r1")));

        (code, _, err) = CliRunner.Run("train", "--task", "arithmetic", "--data", P("train.jsonl"), "--out", P("r2"));
        Assert.Equal(2, code);
        Assert.Contains("task = dataset", err);

        (code, _, err) = CliRunner.Run("train", "--data", P("train.jsonl"), "--eval-data", P("missing.jsonl"), "--out", P("r3"));
        Assert.Equal(2, code);
        Assert.Contains("missing.jsonl", err);
        Assert.False(Directory.Exists(P("r3")));

        File.WriteAllText(P("bad.jsonl"), "{\"question\": \"q\", \"answer\": \"1\"}\n{not json\n");
        (code, _, err) = CliRunner.Run("train", "--data", P("bad.jsonl"), "--eval-data", P("test.jsonl"), "--out", P("r4"));
        Assert.Equal(2, code);
        Assert.Contains("bad.jsonl:2", err);
        Assert.DoesNotContain("   at ", err);

        (code, _, err) = CliRunner.Run("sft", "--model", P("nowhere"), "--data", P("train.jsonl"), "--out", P("s"));
        Assert.Equal(2, code);
        Assert.DoesNotContain("   at ", err);
    }
}

using System.Text.Json;
using EmaPg.Common;
using EmaPg.Environments.Search;
using EmaPg.Model;
using EmaPg.Tasks;
using EmaPg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Environments.Search;

/// <summary>The search environment wired into training: config keys, the embedded world's run, Search-R1's data format.</summary>
public sealed class SearchTrainingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emapg-search-train-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static TrainConfig Tiny(TrainConfig c) => c with
    {
        HiddenSize = 32, IntermediateSize = 64, NumLayers = 1, NumHeads = 4, NumKvHeads = 2, SftSteps = 2, SftBatch = 2,
        PromptsPerIteration = 2, GroupSize = 2, Iterations = 1, EvalEvery = 1, EvalProblems = 2, EvalSamples = 1, PassK = 1,
        MaxTurns = 1, MaxTurnTokens = 12, MaxObsTokens = 120, MaxEpisodeTokens = 200, StabilityMonitor = false, Threads = 1,
    };

    [Fact]
    public void ImpossibleCombinationsAreUserErrorsNamingTheKey()
    {
        var preset = ConfigFile.Resolve("search", null, []);
        Assert.Equal("search-world", ConfigSchema.ResolvedTask(preset with { Task = "auto" }));
        Assert.Contains("env = search", Assert.Throws<UserError>(() => ConfigSchema.CrossValidate(preset with { Task = "arithmetic" })).Message);
        Assert.Contains("needs env = search", Assert.Throws<UserError>(() => ConfigSchema.CrossValidate(preset with { Env = "single-turn" })).Message);
        Assert.Contains("reward must be auto or exact-match", Assert.Throws<UserError>(() => ConfigSchema.CrossValidate(preset with { Reward = "math" })).Message);
        Assert.Contains("retriever is used only by env = search", Assert.Throws<UserError>(() => ConfigSchema.CrossValidate(new TrainConfig { Retriever = "http://h:8000/retrieve" })).Message);
        Assert.Contains("retriever must be empty", Assert.Throws<UserError>(() => ConfigSchema.Find("retriever")!.Set(preset, "ftp://h/retrieve")).Message);
        Assert.Contains("max_turns", Assert.Throws<UserError>(() => ConfigSchema.Find("max_turns")!.Set(preset, "65")).Message);
    }

    [Fact]
    public void TheWorldsDemonstrationsTrainOnlyTheModelsTokensAndARunLogsTheEpisodeMetrics()
    {
        var c = Tiny(ConfigFile.Resolve("search", null, []));
        var cache = Path.Combine(_dir, "cache");
        using (var inputs = RunInputs.Create(c, cache))
        {
            var task = Assert.IsType<SearchTask>(inputs.Task);
            var p = task.SampleTrain(new Random(1));
            Assert.StartsWith("Question: ", p.Prompt);
            var ids = task.EncodeSolution(p);
            var mask = task.SolutionLossMask(p);
            Assert.Equal(ids.Length, mask.Length);
            // The observations (0) are exactly the <information> blocks; the model's own text (1) ends with the gold answer.
            var obs = task.Tokenizer.Decode(ids.Where((_, i) => mask[i] == 0).ToArray());
            var own = task.Tokenizer.Decode(ids.Where((_, i) => mask[i] == 1).ToArray());
            Assert.StartsWith("\n\n<information>Doc 1(Title: ", obs);
            Assert.DoesNotContain("<information>", own);
            Assert.EndsWith($"<answer> {p.Answer} </answer>", own);
            Assert.Equal(1.0, task.Reward(p, task.Tokenizer.Encode($"<answer> {p.Answer.ToUpperInvariant()} </answer>")));
            Assert.Equal(0.0, task.Reward(p, task.Tokenizer.Encode(p.Answer)));   // no <answer>, no reward
        }

        var run = Path.Combine(_dir, "run");
        TrainRun.Execute(c, run, TrainRun.StartMode.New, cacheDir: cache);
        var row = JsonDocument.Parse(File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))[0]).RootElement;
        foreach (var key in new[] { "turns", "searches", "valid_action_rate", "observation_tokens", "answer_rate", "retrieval_errors", "test_pass1" })
            Assert.True(row.TryGetProperty(key, out _), key);
        double turns = row.GetProperty("turns").GetDouble();
        Assert.InRange(turns, 1.0, 2.0);   // max_turns = 1: one turn that may search, then the final one
        Assert.True(File.Exists(Path.Combine(cache, $"search-world-{RunInputs.SearchWorldSeed}-index", "complete")));
    }

    /// <summary>Trainers sharing a cache may build the world's index at the same moment: each builds in a folder of its
    /// own and renames it into place, so both end with a complete index (building in place, one read the other's half-written
    /// index and stopped).</summary>
    [Fact]
    public async Task TwoBuildsOfTheWorldsIndexAtOnceBothLeaveACompleteIndex()
    {
        var world = SearchWorld.Generate(new SearchWorldOptions());
        var cache = Path.Combine(_dir, "shared-cache");
        var dir = Path.Combine(cache, "world-index");
        await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Task.Run(() => RunInputs.BuildWorldIndex(world, cache, dir))));
        Assert.Equal(world.Corpus.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(dir, "complete")));
        Assert.Equal([dir], Directory.GetDirectories(cache));   // no building folder left behind
        using var index = Bm25Index.Open(dir);
        Assert.Equal(world.Corpus.Count, index.Count);
    }

    [Fact]
    public async Task SearchR1DataWithAServedRetrieverBecomesChatPromptsAndMaskedMultiTurnEpisodes()
    {
        var sample = Path.Combine(AppContext.BaseDirectory, "Fixtures", "search", "searchr1_sample.jsonl");
        using var index = Bm25Index.InMemory(
        [
            new Passage("0", "\"Arthur's Magazine\"\nArthur's Magazine was an American literary periodical first published in 1844."),
            new Passage("1", "\"First for Women\"\nFirst for Women is a woman's magazine started in 1989."),
        ]);
        await using var server = await RetrievalServer.StartAsync(index, "127.0.0.1", 0, defaultTopK: 2);
        var c = Tiny(new TrainConfig { Env = "search", Data = sample, EvalData = sample, Tokenizer = "qwen3", Retriever = server.Url.ToString(), SftSteps = 0 });
        ConfigSchema.CrossValidate(c);
        using var inputs = RunInputs.Create(c, Path.Combine(_dir, "cache"));
        var task = Assert.IsType<SearchTask>(inputs.Task);
        Assert.Equal(4, task.TestSplit.Count);
        var p = task.TestSplit[2];
        Assert.StartsWith("<|im_start|>user\nAnswer the given question. ", p.Prompt);
        Assert.Contains("Question: Which magazine was started first Arthur's Magazine or First for Women?\n<|im_end|>\n<|im_start|>assistant\n", p.Prompt);
        Assert.Equal(1.0, task.Reward(p, task.Tokenizer.Encode("<think>x</think><answer> arthurs magazine </answer>")));
        Assert.Contains("demonstrations only for the embedded world", Assert.Throws<UserError>(() => task.EncodeSolution(p)).Message);

        // A random policy's turns are invalid actions: each gets the corrective message, as context without loss.
        using var policy = new DecoderLM(inputs.ModelConfig.Model with { MaxPositionEmbeddings = 1024 }, CPU, ScalarType.Float32, seed: 2);
        var batch = ((IRolloutEnvironment)task).Rollout(policy, [p, p], 1.0, 0, new Generator(3));
        using var gen = batch.Generation;
        Assert.Equal([0.0, 0.0], batch.Rewards);
        Assert.Equal(2.0, batch.Metrics["turns"]);
        Assert.True(batch.Metrics["observation_tokens"] > 0);
        var mask = gen.ResponseMask.data<float>().ToArray();
        Assert.Contains(0f, mask.Take((int)gen.ResponseLength));
    }
}

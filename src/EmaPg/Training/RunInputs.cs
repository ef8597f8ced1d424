using EmaPg.Common;
using EmaPg.Data;
using EmaPg.Environments.Search;
using EmaPg.Model;
using EmaPg.Model.HuggingFace;
using EmaPg.Rewards;
using EmaPg.Tasks;
using EmaPg.Tokenization;
using static TorchSharp.torch;

namespace EmaPg.Training;

/// <summary>
/// What a training config names, made real: the task (the embedded arithmetic or word problems, or the user's data with a
/// reward from the registry), the tokenizer, and the base policy's description: a Hugging Face folder to load, or a
/// <see cref="HfConfig"/> to build and cold-start. Loading the policy itself is <see cref="LoadBasePolicy"/>.
/// </summary>
public sealed class RunInputs : IDisposable
{
    private readonly IDisposable? _retriever;

    private RunInputs(ITask task, HfConfig modelConfig, string? tokenizerDir, string? modelDir, SafeReward? reward, IReadOnlyList<DatasetReport> reports,
        IDisposable? retriever = null)
    {
        _retriever = retriever;
        Task = task;
        ModelConfig = modelConfig;
        TokenizerDir = tokenizerDir;
        ModelDir = modelDir;
        Reward = reward;
        DataReports = reports;
    }

    public ITask Task { get; }
    /// <summary>The policy's architecture and size, with the special ids; what policy/ and anchor/ are saved with.</summary>
    public HfConfig ModelConfig { get; }
    /// <summary>Folder whose tokenizer files are copied into saved model folders; null for the arithmetic task's character tokenizer.</summary>
    public string? TokenizerDir { get; }
    /// <summary>The Hugging Face folder the policy starts from, or null when it is built and cold-started.</summary>
    public string? ModelDir { get; }
    /// <summary>The reward with its failure counts (null for the arithmetic task, whose reward reads tokens).</summary>
    public SafeReward? Reward { get; }
    /// <summary>What loading each data file kept and skipped, for the run's log.</summary>
    public IReadOnlyList<DatasetReport> DataReports { get; }

    /// <summary>The bundled tokenizers (Qwen's files, copied next to the library at build).</summary>
    public static IReadOnlyList<string> BundledTokenizers { get; } = ["qwen3", "qwen2.5"];

    /// <summary>Rows generated for the word-problems task's training split (the generator's stream, test questions excluded).</summary>
    public const int WordProblemsTrainRows = 20_000;

    /// <param name="cacheDir">Where derived data is kept (the embedded world's BM25 index for env = search).</param>
    public static RunInputs Create(TrainConfig c, string cacheDir = "runs/.cache")
    {
        var taskName = ConfigSchema.ResolvedTask(c);
        if (taskName == "search-world") return SearchWorldInputs(c, cacheDir);
        if (taskName == "arithmetic")
        {
            var arithmetic = TrainRun.MakeTask(c);
            var mc = HfConfig.FromModel(TrainRun.MakeModelConfig(c, arithmetic) with { ModelType = c.ModelArch }, arithmetic.Chars.BosId, [arithmetic.Chars.EosId], arithmetic.Chars.PadId);
            return new RunInputs(arithmetic, mc, null, null, null, []);
        }

        string? modelDir = c.Model.Length > 0 ? c.Model : null;
        string tokenizerDir = modelDir ?? TokenizerFolder(c.Tokenizer == "auto" ? "qwen3" : c.Tokenizer);
        var tokenizer = HfTokenizer.Load(tokenizerDir);
        SafeReward? reward = null;
        try
        {
            var template = tokenizer.ChatTemplate;
            if (!c.NoChatTemplate && template is null)
                throw new UserError($"the tokenizer in '{tokenizerDir}' has no chat template; set no_chat_template = true to use prompts as plain text.");
            var renderer = new PromptRenderer(m => template!.Render(m, addGenerationPrompt: true), s => tokenizer.Encode(s).Length);
            var options = DataOptions(c);
            reward = RewardRegistry.CreateSafe(c.Reward != "auto" ? c.Reward : c.Env == "search" ? "exact-match" : "math",
                new RewardOptions { Command = c.RewardCommand.Length > 0 ? c.RewardCommand : null, Timeout = TimeSpan.FromSeconds(c.RewardTimeout) });
            List<PromptExample> train, test;
            var reports = new List<DatasetReport>();
            string fingerprint;
            if (taskName == "word-problems")
            {
                var wp = new WordProblems(new WordProblemsConfig { MinSteps = c.WordProblemsMinSteps, MaxSteps = c.WordProblemsMaxSteps, MaxOperand = c.WordProblemsMaxOperand });
                var rng = new Random(wp.Config.TestSeed + 1);
                Func<WordProblem, string, PromptExample> render = (p, origin) =>
                {
                    var ex = WordProblems.ToExample(p, origin, terse: c.WordProblemsSolution == "terse");
                    var text = DatasetReader.Render(ex, options, renderer);
                    return ex with { PromptText = text };
                };
                train = [.. Enumerable.Range(0, WordProblemsTrainRows).Select(i => render(wp.SampleTrain(rng), $"word-problems train {i}"))];
                test = [.. wp.TestSplit.Select((p, i) => render(p, $"word-problems test {i}"))];
                fingerprint = $"{wp.Fingerprint}/{WordProblemsTrainRows}/{c.WordProblemsSolution}";
            }
            else
            {
                var trainSet = DatasetReader.Load(c.Data, options, renderer);
                var testSet = DatasetReader.Load(c.EvalData, options, renderer);
                reports.AddRange([trainSet.Report, testSet.Report]);
                train = [.. trainSet.Examples];
                test = [.. testSet.Examples];
                fingerprint = $"dataset/{FileStamp(c.Data)}/{FileStamp(c.EvalData)}";
            }
            fingerprint += $"/{options}/{tokenizer.VocabSize}/{reward.Name}";
            ITask task;
            IDisposable? retriever = null;
            if (c.Env == "search")
            {
                // Search-R1's template around each row's question, rendered with the model's chat template (or as plain text).
                string Prompt(string question)
                {
                    var text = SearchPromptOf(c, question);
                    return c.NoChatTemplate ? text : template!.Render([new ChatMessage("user", text)], addGenerationPrompt: true);
                }
                var (r, owned) = OpenRetriever(c, cacheDir);
                retriever = owned;
                task = new SearchTask("search", [.. train.Select(QuestionOf)], [.. test.Select(QuestionOf)], tokenizer, r, SearchOptions(c), Prompt,
                    addSpecialTokens: c.NoChatTemplate, $"{fingerprint}/{c.SearchPrompt}/{c.Retriever}");
            }
            else task = new DatasetTask(taskName, train, test, tokenizer, reward, c.MaxNewTokens, addSpecialTokens: c.NoChatTemplate, fingerprint);
            HfConfig config;
            if (modelDir is not null)
            {
                config = HfConfig.Load(Path.Combine(modelDir, HfCheckpoint.ConfigFile));
                if (config.Model.VocabSize < tokenizer.VocabSize)
                    throw new UserError($"model '{modelDir}': vocab_size {config.Model.VocabSize} is smaller than its tokenizer's {tokenizer.VocabSize} ids.");
            }
            else
            {
                // Chat-templated prompts are far longer than the arithmetic task's: room for 4096 positions (RoPE tables only).
                var built = TrainRun.MakeModelConfig(c, task) with { ModelType = c.ModelArch, VocabSize = Math.Max(c.VocabSize, tokenizer.VocabSize), MaxPositionEmbeddings = 4096 };
                config = HfConfig.FromModel(built, tokenizer.BosTokenId, tokenizer.EosTokenIds, tokenizer.PadTokenId);
            }
            return new RunInputs(task, config, tokenizerDir, modelDir, reward, reports, retriever);
        }
        catch
        {
            reward?.Dispose();
            tokenizer.Dispose();
            throw;
        }
    }

    /// <summary>Seed of the embedded world of task = search-world (fixed: the world, its corpus and its split are part of the job).</summary>
    public const int SearchWorldSeed = 0;

    /// <summary>The embedded search job: the world's questions, its corpus's BM25 index (built once in the cache), the character tokenizer over its alphabet, demonstrations for the cold start.</summary>
    private static RunInputs SearchWorldInputs(TrainConfig c, string cacheDir)
    {
        var world = SearchWorld.Generate(new SearchWorldOptions { Seed = SearchWorldSeed });
        var (retriever, owned) = OpenRetriever(c, cacheDir, world);
        try
        {
            var options = SearchOptions(c);
            // Demonstrations search the world's own index (a served one may differ); a question whose passage it misses has none and is left out of training.
            IRetriever demoIndex = c.Retriever.Length == 0 ? retriever : Bm25Index.InMemory(world.Corpus);
            // With the short prompt (the small policy's) the demonstrations are terse: actions without <think>.
            bool terse = c.SearchPrompt == "short";
            var train = world.Train.Select(q => (q, demo: Demonstrations.For(q, demoIndex, options.TopK, terse))).Where(x => x.demo is not null)
                .Select(x => new SearchQuestion(x.q.Question, x.q.GoldenAnswers, x.q.Id, "emapg-world", x.demo)).ToList();
            if (!ReferenceEquals(demoIndex, retriever)) (demoIndex as IDisposable)?.Dispose();
            var test = world.Test.Select(q => new SearchQuestion(q.Question, q.GoldenAnswers, q.Id, "emapg-world")).ToList();
            var chars = new CharTokenizer(SearchWorld.Alphabet);
            var task = new SearchTask("search-world", train, test, chars, retriever, options, q => SearchPromptOf(c, q), addSpecialTokens: true,
                $"world-{SearchWorldSeed}/{c.SearchPrompt}/{c.Retriever}");
            var mc = HfConfig.FromModel(TrainRun.MakeModelConfig(c, task) with { ModelType = c.ModelArch }, chars.BosId, [chars.EosId], chars.PadId);
            return new RunInputs(task, mc, null, null, null, [], owned);
        }
        catch
        {
            owned?.Dispose();
            throw;
        }
    }

    private static SearchEnvOptions SearchOptions(TrainConfig c) => new SearchEnvOptions
    {
        MaxTurns = c.MaxTurns, TopK = c.SearchTopK, MaxTurnTokens = c.MaxTurnTokens, MaxObservationTokens = c.MaxObsTokens, MaxResponseTokens = c.MaxEpisodeTokens,
    }.Validate();

    private static string SearchPromptOf(TrainConfig c, string question) =>
        c.SearchPrompt == "short" ? $"Question: {SearchR1Protocol.NormalizeQuestion(question)}\n" : SearchR1Protocol.Prompt(question);

    private static SearchQuestion QuestionOf(PromptExample e) =>
        new(string.Join("\n", e.Messages.Where(m => m.Role == "user").Select(m => m.Content)), e.GroundTruths, e.Origin, e.DataSource);

    /// <summary>The retriever of env = search: the URL's server, or the embedded world's index, built under the cache on first use.</summary>
    private static (IRetriever Retriever, IDisposable? Owned) OpenRetriever(TrainConfig c, string cacheDir, SearchWorld? world = null)
    {
        if (c.Retriever.Length > 0)
        {
            var http = new HttpRetriever(c.Retriever);
            return (http, http);
        }
        world ??= SearchWorld.Generate(new SearchWorldOptions { Seed = SearchWorldSeed });
        var dir = Path.Combine(cacheDir, $"search-world-{SearchWorldSeed}-index");
        if (!File.Exists(Path.Combine(dir, "complete"))) BuildWorldIndex(world, cacheDir, dir);
        var index = Bm25Index.Open(dir);
        return (index, index);
    }

    /// <summary>
    /// Builds the world's index in a folder of this process's own and renames it into place: trainers sharing a cache may
    /// start together (two did, and one read the other's half-written index and stopped). A rename is atomic, so
    /// <paramref name="dir"/> is either absent or complete; whoever renames second keeps the first one's index.
    /// </summary>
    internal static void BuildWorldIndex(SearchWorld world, string cacheDir, string dir)
    {
        Directory.CreateDirectory(cacheDir);
        string own = $"{dir}.building-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            Directory.CreateDirectory(own);
            var corpus = Path.Combine(own, "corpus.jsonl");
            world.WriteCorpus(corpus);
            var index = Path.Combine(own, "index");
            Bm25Index.Build(corpus, index);
            File.WriteAllText(Path.Combine(index, "complete"), world.Corpus.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            // A folder without the marker is a build the old code left half done: nobody builds in place any more.
            if (Directory.Exists(dir) && !File.Exists(Path.Combine(dir, "complete"))) Directory.Delete(dir, recursive: true);
            try { Directory.Move(index, dir); }
            catch (IOException) when (File.Exists(Path.Combine(dir, "complete"))) { }
        }
        finally
        {
            if (Directory.Exists(own)) Directory.Delete(own, recursive: true);
        }
    }

    /// <summary>The base policy: the model folder's weights (float32, for training), or a fresh model of <see cref="ModelConfig"/> with the config's seed.</summary>
    public CausalLM CreatePolicy(Device device, long seed) =>
        ModelDir is not null
            ? HfCheckpoint.Load(ModelDir, ScalarType.Float32, device).Model
            : Architectures.Create(ModelConfig.Model, device, ScalarType.Float32, seed);

    public static DatasetOptions DataOptions(TrainConfig c) => new DatasetOptions
    {
        PromptField = NullIfEmpty(c.PromptField), AnswerField = NullIfEmpty(c.AnswerField), SolutionField = NullIfEmpty(c.SolutionField),
        InstructionSuffix = c.InstructionSuffix == "deepscaler" ? DatasetOptions.DeepScaleRInstruction : NullIfEmpty(c.InstructionSuffix),
        NoChatTemplate = c.NoChatTemplate, MaxPromptTokens = c.MaxPromptLength,
        OverLength = c.OverLength == "error" ? OverLengthPolicy.Error : OverLengthPolicy.Skip,
    }.Validated();

    /// <summary>A bundled tokenizer's folder by name, or a folder given as a path.</summary>
    public static string TokenizerFolder(string nameOrPath)
    {
        if (BundledTokenizers.Contains(nameOrPath))
        {
            var dir = Path.Combine(AppContext.BaseDirectory, "tokenizers", nameOrPath);
            if (!File.Exists(Path.Combine(dir, "tokenizer.json")))
                throw new InvalidOperationException($"the bundled tokenizer '{nameOrPath}' is missing from {dir}; rebuild the project.");
            return dir;
        }
        if (!Directory.Exists(nameOrPath))
            throw new UserError($"tokenizer must be auto, one of {string.Join(", ", BundledTokenizers)}, or a folder with tokenizer.json; '{nameOrPath}' is none of these.");
        return Path.GetFullPath(nameOrPath);
    }

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;

    /// <summary>Identifies a data file's content cheaply (size and modification time) for cache keys.</summary>
    private static string FileStamp(string path)
    {
        var f = new FileInfo(path);
        return f.Exists ? $"{f.Length}-{f.LastWriteTimeUtc.Ticks}" : "missing";
    }

    public void Dispose()
    {
        _retriever?.Dispose();
        Reward?.Dispose();
        (Task.Tokenizer as IDisposable)?.Dispose();
    }
}

using EmaPg.Common;
using EmaPg.Data;
using EmaPg.Model;
using EmaPg.Sampling;
using EmaPg.Tasks;
using EmaPg.Tokenization;
using static TorchSharp.torch;

namespace EmaPg.Environments.Search;

/// <summary>A question of the search environment: its text, gold answers and, for the cold start, an optional demonstration.</summary>
public sealed record SearchQuestion(string Question, IReadOnlyList<string> GoldenAnswers, string Origin, string? DataSource = null, IReadOnlyList<DemoSegment>? Demonstration = null);

/// <summary>
/// Questions answered through <see cref="SearchRollout"/>: training and evaluation roll out multi-turn episodes with the
/// retriever (<see cref="IRolloutEnvironment"/>), the reward is Search-R1's exact match of the last &lt;answer&gt;, and the cold
/// start learns from demonstrations whose observations carry no loss (<see cref="IMaskedSolutions"/>).
/// </summary>
public sealed class SearchTask : ITask, IRolloutEnvironment, IMaskedSolutions
{
    private readonly IReadOnlyList<Problem> _train;
    private readonly Dictionary<Problem, (int[] Ids, float[] Mask)> _demos = [];
    private readonly IRetriever _retriever;
    private readonly SearchEnvOptions _options;
    private readonly TextCodec _codec;
    private readonly bool _addSpecialTokens;

    /// <param name="prompt">The prompt text of a question (Search-R1's template, possibly chat-rendered).</param>
    public SearchTask(string name, IReadOnlyList<SearchQuestion> train, IReadOnlyList<SearchQuestion> test, ITextTokenizer tokenizer, IRetriever retriever,
        SearchEnvOptions options, Func<string, string> prompt, bool addSpecialTokens, string fingerprint)
    {
        if (train.Count == 0) throw new UserError($"task '{name}': the training split is empty.");
        if (test.Count == 0) throw new UserError($"task '{name}': the test split is empty.");
        Name = name;
        Tokenizer = tokenizer;
        _retriever = retriever;
        _options = options.Validate();
        _codec = TextCodec.From(tokenizer);
        _addSpecialTokens = addSpecialTokens;
        Fingerprint = $"search/v2/{fingerprint}/{options}";
        Problem ToProblem(SearchQuestion q)
        {
            var p = new Problem(prompt(q.Question), q.GoldenAnswers[0], "")
            {
                Example = new PromptExample { GroundTruths = q.GoldenAnswers, DataSource = q.DataSource, Origin = q.Origin },
            };
            if (q.Demonstration is not null) _demos[p] = Demonstrations.Encode(q.Demonstration, _codec, _options.MaxObservationTokens);
            return p;
        }
        _train = train.Select(ToProblem).ToArray();
        TestSplit = test.Select(ToProblem).ToArray();
    }

    public string Name { get; }
    public ITextTokenizer Tokenizer { get; }
    public string Fingerprint { get; }
    /// <summary>The episode's token budget (model turns and observations).</summary>
    public int MaxResponseTokens => _options.MaxResponseTokens;
    public IReadOnlyList<Problem> TestSplit { get; }
    public SearchEnvOptions Options => _options;

    public Problem SampleTrain(Random rng) => _train[rng.Next(_train.Count)];

    public int[] EncodePrompt(Problem problem) => Tokenizer.Encode(problem.Prompt, _addSpecialTokens);

    /// <summary>The demonstration's ids (model text and observations); the cold start weights them by <see cref="SolutionLossMask"/>.</summary>
    public int[] EncodeSolution(Problem problem) => Demo(problem).Ids;

    public float[] SolutionLossMask(Problem problem) => Demo(problem).Mask;

    private (int[] Ids, float[] Mask) Demo(Problem problem) =>
        _demos.TryGetValue(problem, out var d) ? d
            : throw new UserError($"{problem.Example?.Origin ?? Name}: the search task has demonstrations only for the embedded world; with your own data start from a model (model = DIR) and set sft_steps = 0.");

    /// <summary>Exact match of a single response's last &lt;answer&gt; (a one-turn episode), 0 without one.</summary>
    public double Reward(Problem problem, IReadOnlyList<int> response)
    {
        var a = SearchR1Protocol.ParseAction(Tokenizer.Decode(response, skipSpecialTokens: true));
        var answer = Rewards.ExactMatchReward.Normalize(a.Content);
        return a.Kind == AgentActionKind.Answer && problem.Example!.GroundTruths.Any(g => Rewards.ExactMatchReward.Normalize(g) == answer) ? 1.0 : 0.0;
    }

    public RolloutBatch Rollout(CausalLM policy, IReadOnlyList<Problem> problems, double temperature, int returnTopK, Generator generator)
    {
        var turns = new SamplerTurnGenerator(policy, _codec, new SamplingOptions { Temperature = temperature, ReturnTopK = returnTopK }, generator);
        var episodes = new SearchRollout(turns, _retriever, _codec, _options).Run(problems.Select(EncodePrompt).ToList());
        var rewards = episodes.Select((e, i) => e.ExactMatch(problems[i].Example!.GroundTruths)).ToArray();
        var m = SearchRolloutMetrics.Of(episodes);
        var metrics = new Dictionary<string, double>
        {
            ["turns"] = m.Turns, ["searches"] = m.Searches, ["valid_action_rate"] = m.ValidActionRate, ["observation_tokens"] = m.ObservationTokens,
            ["answer_rate"] = m.AnswerRate, ["retrieval_errors"] = m.RetrievalErrors, ["truncated"] = episodes.Average(e => e.Truncated ? 1.0 : 0.0),
        };
        return new RolloutBatch(SearchRollout.ToGeneration(episodes, _codec.PadId, policy.Device), rewards, metrics);
    }
}

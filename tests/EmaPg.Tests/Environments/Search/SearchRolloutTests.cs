using EmaPg.Environments.Search;
using EmaPg.Tasks;

namespace EmaPg.Tests.Environments.Search;

public class SearchRolloutTests
{
    internal static readonly CharTokenizer Chars = new(SearchWorld.Alphabet);
    internal static readonly TextCodec Codec = TextCodec.From(Chars);

    /// <summary>Plays fixed turn texts per episode (found by its prompt); log-prob of the j-th token of a turn is −(j+1)/100.</summary>
    private sealed class ScriptedTurns(Dictionary<string, Queue<string>> script, int topK = 0) : ITurnGenerator
    {
        public List<(int Batch, int MaxNew)> Calls { get; } = [];
        public int TopK => topK;

        public IReadOnlyList<GeneratedTurn> Generate(IReadOnlyList<int[]> contexts, int maxNewTokens)
        {
            Calls.Add((contexts.Count, maxNewTokens));
            return contexts.Select(c =>
            {
                var text = Chars.Decode(c);
                var tokens = Chars.Encode(script.Single(kv => text.StartsWith(kv.Key, StringComparison.Ordinal)).Value.Dequeue());
                tokens = tokens.Take(maxNewTokens).ToArray();
                return new GeneratedTurn(tokens, tokens.Select((_, j) => -(j + 1) / 100f).ToArray(),
                    topK > 0 ? tokens.SelectMany(t => Enumerable.Range(0, topK).Select(r => (long)(t + r))).ToArray() : null);
            }).ToList();
        }
    }

    /// <summary>Returns one fixed passage per query and records each call's queries; or fails.</summary>
    private sealed class RecordingRetriever(bool fail = false) : IRetriever
    {
        public List<string[]> Calls { get; } = [];

        public IReadOnlyList<IReadOnlyList<RetrievedPassage>> Retrieve(IReadOnlyList<string> queries, int topK)
        {
            Calls.Add([.. queries]);
            if (fail) throw new RetrieverException("retriever http://127.0.0.1:9/retrieve failed after 3 attempt(s): connection refused");
            return queries.Select(q => (IReadOnlyList<RetrievedPassage>)[new RetrievedPassage(new Passage("1", $"\"{q}\"\nfacts about {q}"), 1.0)]).ToList();
        }
    }

    private static int[] Prompt(string s) => Chars.Encode(s);

    private static string Obs(string query) => SearchR1Protocol.Observation($"Doc 1(Title: \"{query}\") facts about {query}\n");

    [Fact]
    public void EpisodesAdvanceInLockStepWithOneRetrievalCallPerTurn()
    {
        var script = new Dictionary<string, Queue<string>>
        {
            ["P0:"] = new(["<search> a </search>", "<answer> A </answer>"]),
            ["P1:"] = new(["I am unsure", "<answer> B </answer>"]),
            ["P2:"] = new(["<search> c1 </search>", "<search>c2</search>", "<search> c3 </search>"]),
            ["P3:"] = new(["<think>easy</think><answer>D</answer>"]),
        };
        var turns = new ScriptedTurns(script);
        var retriever = new RecordingRetriever();
        var rollout = new SearchRollout(turns, retriever, Codec, new SearchEnvOptions { MaxTurns = 2, TopK = 3, MaxTurnTokens = 100 });
        var episodes = rollout.Run(new[] { "P0:", "P1:", "P2:", "P3:" }.Select(Prompt).ToList());

        // Turn 1: four episodes generate, two search in one call; turn 2: three; final turn: only P2 is left.
        Assert.Equal([(4, 100), (3, 100), (1, 100)], turns.Calls);
        Assert.Equal(new[] { new[] { "a", "c1" }, ["c2"] }, retriever.Calls);

        var (e0, e1, e2, e3) = (episodes[0], episodes[1], episodes[2], episodes[3]);
        Assert.Equal("<search> a </search>" + Obs("a") + "<answer> A </answer>", Chars.Decode(e0.Response));
        Assert.Equal("I am unsure" + SearchR1Protocol.InvalidActionMessage + "<answer> B </answer>", Chars.Decode(e1.Response));
        // P2 used its two searches; the final turn's search is not executed and the episode ends without an answer.
        Assert.Equal("<search> c1 </search>" + Obs("c1") + "<search>c2</search>" + Obs("c2") + "<search> c3 </search>", Chars.Decode(e2.Response));
        Assert.Equal("<think>easy</think><answer>D</answer>", Chars.Decode(e3.Response));

        Assert.Equal(("A", "B", null, "D"), (e0.Answer, e1.Answer, e2.Answer, e3.Answer));
        Assert.Equal([1.0, 0.0, 0.0, 1.0], new[] { e0.ExactMatch(["a"]), e1.ExactMatch(["A."]), e2.ExactMatch([""]), e3.ExactMatch(["x", "the d"]) });
        Assert.Equal((1, 0, 2, 0), (e0.Searches, e1.Searches, e2.Searches, e3.Searches));
        Assert.Equal((2, 2, 3, 1), (e0.Turns.Count, e1.Turns.Count, e2.Turns.Count, e3.Turns.Count));
        Assert.Equal((2, 1, 3, 1), (e0.ValidActions, e1.ValidActions, e2.ValidActions, e3.ValidActions));
        Assert.Equal(Obs("c1").Length + Obs("c2").Length, e2.ObservationTokens);
        Assert.All(episodes, e => Assert.False(e.Truncated));

        // Loss mask: 1 exactly on the model's own tokens; sampling log-probs only there.
        foreach (var e in episodes)
        {
            Assert.Equal(e.Response.Length, e.LossMask.Length);
            Assert.Equal(e.Turns.Sum(t => t.Length), (int)e.LossMask.Sum());
            Assert.Equal(string.Concat(e.Turns), Chars.Decode(e.Response.Where((_, j) => e.LossMask[j] == 1).ToArray()));
            Assert.All(e.SamplingLogp.Where((_, j) => e.LossMask[j] == 0), v => Assert.Equal(0f, v));
            Assert.All(e.SamplingLogp.Where((_, j) => e.LossMask[j] == 1), v => Assert.True(v < 0));
        }
        string obsText = Chars.Decode(e0.Response.Where((_, j) => e0.LossMask[j] == 0).ToArray());
        Assert.Equal(Obs("a"), obsText);

        var m = SearchRolloutMetrics.Of(episodes);
        Assert.Equal(new SearchRolloutMetrics(2.0, 0.75, 7.0 / 8.0, (Obs("a").Length + SearchR1Protocol.InvalidActionMessage.Length + Obs("c1").Length + Obs("c2").Length) / 4.0, 0.75, 0), m);
    }

    [Fact]
    public void WithMaxTurnsZeroOnlyTheFinalTurnRunsAndNothingIsSearched()
    {
        var turns = new ScriptedTurns(new() { ["P0:"] = new(["<search> a </search>"]), ["P1:"] = new(["<answer> B </answer>"]) });
        var retriever = new RecordingRetriever();
        var episodes = new SearchRollout(turns, retriever, Codec, new SearchEnvOptions { MaxTurns = 0 }).Run([Prompt("P0:"), Prompt("P1:")]);
        Assert.Empty(retriever.Calls);
        Assert.Single(turns.Calls);
        Assert.Equal((null, "B"), (episodes[0].Answer, episodes[1].Answer));
        Assert.Equal((0, 0), (episodes[0].Searches, episodes[0].ObservationTokens));
    }

    [Fact]
    public void ARetrieverFailureBecomesAnErrorObservationAndTheEpisodeGoesOn()
    {
        var turns = new ScriptedTurns(new() { ["P0:"] = new(["<search> a </search>", "<answer> guess </answer>"]) });
        var episodes = new SearchRollout(turns, new RecordingRetriever(fail: true), Codec, new SearchEnvOptions()).Run([Prompt("P0:")]);
        var e = Assert.Single(episodes);
        Assert.Equal("<search> a </search>" + SearchR1Protocol.Observation("Search failed: retriever http://127.0.0.1:9/retrieve failed after 3 attempt(s): connection refused")
            + "<answer> guess </answer>", Chars.Decode(e.Response));
        Assert.Equal((1, 1, "guess"), (e.Searches, e.RetrievalErrors, e.Answer));
        Assert.Equal(1, SearchRolloutMetrics.Of(episodes).RetrievalErrors);
    }

    [Fact]
    public void TokenBudgetsCutTurnsObservationsAndEpisodes()
    {
        // Per-turn budget: a long turn is cut, which leaves it without an action.
        var turns = new ScriptedTurns(new() { ["P0:"] = new(["<search> a </search>", "<answer> x </answer>"]) });
        var e = new SearchRollout(turns, new RecordingRetriever(), Codec, new SearchEnvOptions { MaxTurns = 0, MaxTurnTokens = 10 }).Run([Prompt("P0:")])[0];
        Assert.Equal("<search> a", Chars.Decode(e.Response));
        Assert.Null(e.Answer);

        // Observation budget: passages are cut, the block stays closed.
        int tags = SearchR1Protocol.InformationOpen.Length + SearchR1Protocol.InformationClose.Length;
        turns = new ScriptedTurns(new() { ["P0:"] = new(["<search> a </search>", "<answer> x </answer>"]) });
        e = new SearchRollout(turns, new RecordingRetriever(), Codec, new SearchEnvOptions { MaxObservationTokens = tags + 3 }).Run([Prompt("P0:")])[0];
        Assert.Equal("<search> a </search>\n\n<information>Doc</information>\n\n<answer> x </answer>", Chars.Decode(e.Response));

        // Response budget: the episode ends when the next piece does not fit; nothing past the budget is kept.
        turns = new ScriptedTurns(new() { ["P0:"] = new(["<search> a </search>", "<answer> x </answer>"]) });
        e = new SearchRollout(turns, new RecordingRetriever(), Codec, new SearchEnvOptions { MaxResponseTokens = 25 }).Run([Prompt("P0:")])[0];
        Assert.True(e.Truncated);
        Assert.Null(e.Answer);
        Assert.Equal("<search> a </search>", Chars.Decode(e.Response));
        Assert.True(e.Response.Length <= 25);
    }

    [Fact]
    public void ToGenerationCarriesTheLossMaskAndTopK()
    {
        var turns = new ScriptedTurns(new() { ["P0:"] = new(["<search> a </search>", "<answer> A </answer>"]), ["Q:"] = new(["<answer> B </answer>"]) }, topK: 2);
        var episodes = new SearchRollout(turns, new RecordingRetriever(), Codec, new SearchEnvOptions()).Run([Prompt("P0:"), Prompt("Q:")]);
        using var gen = SearchRollout.ToGeneration(episodes, Chars.PadId, TorchSharp.torch.CPU);
        int width = episodes.Max(e => e.Response.Length);
        Assert.Equal([2L, 3L], gen.PromptIds.shape);
        Assert.Equal([2L, width], gen.ResponseIds.shape);
        Assert.Equal([2L, width, 2L], gen.TopKIndices!.shape);
        var mask = gen.ResponseMask.data<float>().ToArray();
        var logp = gen.LogProbs.data<float>().ToArray();
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < width; j++)
            {
                var e = episodes[i];
                Assert.Equal(j < e.Response.Length ? e.LossMask[j] : 0f, mask[i * width + j]);
                Assert.Equal(j < e.Response.Length ? e.SamplingLogp[j] : 0f, logp[i * width + j]);
            }
        Assert.Equal(Chars.Encode("<").Single() + 1, gen.TopKIndices![0, 0, 1].item<long>());
        Assert.Equal([true, true], gen.Stopped);
        // The prompt of the shorter episode is left-padded.
        Assert.Equal([0L, 1L, 1L], gen.PromptMask[1].data<long>().ToArray());
    }
}

using EmaPg.Common;
using EmaPg.Environments.Search;
using EmaPg.Tasks;

namespace EmaPg.Tests.Environments.Search;

public class SearchR1ProtocolTests
{
    [Fact]
    public void PromptIsSearchR1sBaseTemplateVerbatim()
    {
        // Copied from Search-R1's scripts/data_process/nq_search.py (make_prefix, template_type "base"), after its
        // question clean-up (strip, append '?').
        const string expected = "Answer the given question. You must conduct reasoning inside <think> and </think> first every time you get new information. After reasoning, if you find you lack some knowledge, you can call a search engine by <search> query </search> and it will return the top searched results between <information> and </information>. You can search as many times as your want. If you find no further external knowledge needed, you can directly provide the answer inside <answer> and </answer>, without detailed illustrations. For example, <answer> Beijing </answer>. Question: who founded the city of Quellport?\n";
        Assert.Equal(expected, SearchR1Protocol.Prompt("  who founded the city of Quellport "));
        Assert.Equal(expected, SearchR1Protocol.Prompt("who founded the city of Quellport?"));
    }

    [Fact]
    public void InvalidActionMessageIsSearchR1sVerbatim()
    {
        Assert.Equal("\nMy previous action is invalid. If I want to search, I should put the query between <search> and </search>. If I want to give the final answer, I should put the answer between <answer> and </answer>. Let me try again.\n",
            SearchR1Protocol.InvalidActionMessage);
    }

    [Theory]
    [InlineData("<think>need the founder</think>\n<search> founder of Quellport </search>", AgentActionKind.Search, "founder of Quellport")]
    [InlineData("<think>known</think> <answer> Tessaly Brone </answer>", AgentActionKind.Answer, "Tessaly Brone")]
    [InlineData("<search>\nmulti\nline\n</search>", AgentActionKind.Search, "multi\nline")]
    [InlineData("<answer>a</answer> then <search>b</search>", AgentActionKind.Answer, "a")]          // the first tag wins
    [InlineData("<search>b</search><answer>a</answer>", AgentActionKind.Search, "b")]
    [InlineData("<search></search>", AgentActionKind.Search, "")]
    [InlineData("<search> x </answer>", AgentActionKind.Invalid, "")]                             // tags must match
    [InlineData("<think>I will search for it", AgentActionKind.Invalid, "")]
    [InlineData("<answer> unfinished", AgentActionKind.Invalid, "")]
    [InlineData("", AgentActionKind.Invalid, "")]
    public void ParseActionFollowsSearchR1sPostprocessPredictions(string turn, AgentActionKind kind, string content)
    {
        Assert.Equal(new AgentAction(kind, content), SearchR1Protocol.ParseAction(turn));
    }

    [Fact]
    public void PassagesAreFormattedAsSearchR1sDocLines()
    {
        var passages = new[]
        {
            new RetrievedPassage(new Passage("3", "\"Quellport\"\nQuellport is a river town.\nIt has bells."), 4.2),
            new RetrievedPassage(new Passage("9", "Untitled"), 1.0),
        };
        string text = SearchR1Protocol.FormatPassages(passages);
        Assert.Equal("Doc 1(Title: \"Quellport\") Quellport is a river town.\nIt has bells.\nDoc 2(Title: Untitled) \n", text);
        Assert.Equal("\n\n<information>Doc 1(Title: \"Quellport\") Quellport is a river town.\nIt has bells.\nDoc 2(Title: Untitled)</information>\n\n",
            SearchR1Protocol.Observation(text));
    }

    private static readonly CharTokenizer Chars = SearchRolloutTests.Chars;

    [Fact]
    public void ObservationsAreTruncatedToTheTokenLimitAndStayClosed()
    {
        const string passages = "Doc 1(Title: A) abcdefghij\n";
        var full = SearchR1Protocol.ObservationTokens(passages, s => Chars.Encode(s), 500);
        Assert.Equal(SearchR1Protocol.Observation(passages), Chars.Decode(full));
        int tags = SearchR1Protocol.InformationOpen.Length + SearchR1Protocol.InformationClose.Length;
        var cut = SearchR1Protocol.ObservationTokens(passages, s => Chars.Encode(s), tags + 5);
        Assert.Equal(tags + 5, cut.Length);
        Assert.Equal("\n\n<information>Doc 1</information>\n\n", Chars.Decode(cut));
        Assert.Equal("\n\n<information></information>\n\n", Chars.Decode(SearchR1Protocol.ObservationTokens(passages, s => Chars.Encode(s), tags)));
        var e = Assert.Throws<UserError>(() => SearchR1Protocol.ObservationTokens(passages, s => Chars.Encode(s), tags - 1));
        Assert.Equal($"max_obs_tokens must be at least {tags} (the <information> tags alone), got {tags - 1}.", e.Message);
    }

    [Fact]
    public void StopStringCriterionFiresTheStepAStopStringCompletes()
    {
        var stop = StopStringCriterion.Create(ids => Chars.Decode(ids), SearchR1Protocol.StopStrings);
        var tokens = new List<int>();
        var fired = new List<int>();
        foreach (var (c, i) in "<think>long reasoning here</think><search> q </search> trailing".Select((c, i) => (c, i)))
        {
            tokens.AddRange(Chars.Encode(c.ToString()));
            if (stop(tokens)) fired.Add(i);
        }
        int end = "<think>long reasoning here</think><search> q </search>".Length - 1;
        Assert.Equal(end, fired[0]);
        Assert.False(stop(Chars.Encode("<answer> x </answe").ToList()));
        Assert.True(stop(Chars.Encode("<answer> x </answer>").ToList()));
    }
}

using System.Text;
using System.Text.RegularExpressions;

namespace EmaPg.Environments.Search;

/// <summary>What the model did in one turn: a search with its query, a final answer, or neither.</summary>
public enum AgentActionKind { Search, Answer, Invalid }

/// <summary>A parsed turn; <see cref="Content"/> is the tag's trimmed inner text ("" when invalid).</summary>
public sealed record AgentAction(AgentActionKind Kind, string Content);

/// <summary>
/// The text side of Search-R1 (Jin et al., 2025) as pure functions: the "base" prompt template, the action a turn's text
/// takes, the fixed corrective message for an invalid action, and the &lt;information&gt; block of retrieved passages.
/// Strings are Search-R1's own, byte for byte (scripts/data_process/nq_search.py, search_r1/llm_agent/generation.py).
/// </summary>
public static partial class SearchR1Protocol
{
    /// <summary>A turn ends when its decoded text contains one of these (or at EOS, or at the per-turn token budget).</summary>
    public static readonly IReadOnlyList<string> StopStrings = ["</search>", "</answer>"];

    /// <summary>Search-R1's corrective observation after a turn with neither a search nor an answer.</summary>
    public const string InvalidActionMessage =
        "\nMy previous action is invalid. If I want to search, I should put the query between <search> and </search>. " +
        "If I want to give the final answer, I should put the answer between <answer> and </answer>. Let me try again.\n";

    public const string InformationOpen = "\n\n<information>", InformationClose = "</information>\n\n";

    /// <summary>Search-R1's question clean-up: trimmed, and a '?' appended when it does not end with one.</summary>
    public static string NormalizeQuestion(string question)
    {
        var q = question.Trim();
        return q.Length > 0 && q[^1] == '?' ? q : q + "?";
    }

    /// <summary>Search-R1's "base" template (<c>make_prefix</c>) around the normalised question.</summary>
    public static string Prompt(string question) =>
        "Answer the given question. " +
        "You must conduct reasoning inside <think> and </think> first every time you get new information. " +
        "After reasoning, if you find you lack some knowledge, you can call a search engine by <search> query </search> and it will return the top searched results between <information> and </information>. " +
        "You can search as many times as your want. " +
        "If you find no further external knowledge needed, you can directly provide the answer inside <answer> and </answer>, without detailed illustrations. " +
        $"For example, <answer> Beijing </answer>. Question: {NormalizeQuestion(question)}\n";

    /// <summary>The first <c>&lt;search&gt;…&lt;/search&gt;</c> or <c>&lt;answer&gt;…&lt;/answer&gt;</c> of a turn (Search-R1's <c>postprocess_predictions</c>).</summary>
    public static AgentAction ParseAction(string turn)
    {
        var m = ActionTag().Match(turn);
        if (!m.Success) return new AgentAction(AgentActionKind.Invalid, "");
        return new AgentAction(m.Groups[1].Value == "search" ? AgentActionKind.Search : AgentActionKind.Answer, m.Groups[2].Value.Trim());
    }

    /// <summary>Search-R1's <c>_passages2string</c>: "Doc i(Title: first line) rest\n" per passage.</summary>
    public static string FormatPassages(IReadOnlyList<RetrievedPassage> passages)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < passages.Count; i++)
            sb.Append("Doc ").Append(i + 1).Append("(Title: ").Append(passages[i].Document.Title).Append(") ").Append(passages[i].Document.Text).Append('\n');
        return sb.ToString();
    }

    /// <summary>The observation after a search: the passages, trimmed, inside &lt;information&gt; (Search-R1's <c>execute_predictions</c>).</summary>
    public static string Observation(string passagesText) => InformationOpen + passagesText.Trim() + InformationClose;

    /// <summary>
    /// Token ids of <see cref="Observation"/> within <paramref name="maxTokens"/>: the passages' tokens are cut so that the
    /// block still closes with &lt;/information&gt; (Search-R1 cuts the whole block at max_obs_length, tag included).
    /// </summary>
    public static int[] ObservationTokens(string passagesText, Func<string, int[]> encode, int maxTokens)
    {
        var open = encode(InformationOpen);
        var close = encode(InformationClose);
        if (open.Length + close.Length > maxTokens)
            throw new Common.UserError($"max_obs_tokens must be at least {open.Length + close.Length} (the <information> tags alone), got {maxTokens}.");
        var body = encode(passagesText.Trim());
        int keep = Math.Min(body.Length, maxTokens - open.Length - close.Length);
        return [.. open, .. body.AsSpan(0, keep), .. close];
    }

    [GeneratedRegex(@"<(search|answer)>(.*?)</\1>", RegexOptions.Singleline)]
    private static partial Regex ActionTag();
}

/// <summary>
/// A stop criterion over decoded text for <see cref="Sampling.SamplingOptions.StopWhen"/>: true once the decoded tail
/// of the generated tokens contains a stop string. Decoding only a tail keeps it O(1) per step; the tail is long enough
/// because the check runs after every token, so a stop string is seen the step it completes.
/// </summary>
public static class StopStringCriterion
{
    public static Func<IReadOnlyList<int>, bool> Create(Func<IReadOnlyList<int>, string> decode, IReadOnlyList<string> stops)
    {
        // A token carries at least one byte of text; a stop string of n chars spans at most 4n bytes of UTF-8.
        int window = 4 * stops.Max(s => s.Length) + 2;
        return tokens =>
        {
            int start = Math.Max(0, tokens.Count - window);
            var tail = decode(tokens is List<int> list ? list.GetRange(start, tokens.Count - start) : tokens.Skip(start).ToList());
            foreach (var s in stops) if (tail.Contains(s, StringComparison.Ordinal)) return true;
            return false;
        };
    }
}

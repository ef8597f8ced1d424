using System.Text;
using System.Text.RegularExpressions;
using EmaPg.Data;

namespace EmaPg.Rewards;

/// <summary>
/// SQuAD-style exact match (verl's qa_em / Search-R1): the last &lt;answer&gt;…&lt;/answer&gt; when present, else the whole
/// response, normalised (lowercase, punctuation and the articles a/an/the removed, whitespace collapsed) equals
/// any normalised gold answer → 1, else 0.
/// </summary>
public sealed partial class ExactMatchReward : IReward
{
    public double Score(string response, PromptExample example)
    {
        var answer = Normalize(ExtractAnswer(response));
        return example.GroundTruths.Any(g => Normalize(g) == answer) ? 1.0 : 0.0;
    }

    /// <summary>The content of the last &lt;answer&gt;…&lt;/answer&gt;, or the whole response when there is none.</summary>
    public static string ExtractAnswer(string response)
    {
        var matches = AnswerTag().Matches(response);
        return matches.Count > 0 ? matches[^1].Groups[1].Value : response;
    }

    /// <summary>SQuAD's normalize_answer: lower, drop punctuation, drop articles, collapse whitespace.</summary>
    public static string Normalize(string s)
    {
        s = s.ToLowerInvariant();
        var sb = new StringBuilder(s.Length);
        foreach (char c in s) if (!Punctuation.Contains(c)) sb.Append(c);
        s = Articles().Replace(sb.ToString(), " ");
        return string.Join(' ', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
    }

    // Python's string.punctuation, which SQuAD's normalize_answer removes.
    private const string Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    [GeneratedRegex(@"<answer>(.*?)</answer>", RegexOptions.Singleline)]
    private static partial Regex AnswerTag();

    [GeneratedRegex(@"\b(a|an|the)\b")]
    private static partial Regex Articles();
}

namespace EmaPg.Environments.Search;

/// <summary>A piece of a demonstration: the model's text, or the passages an observation wraps in &lt;information&gt;.</summary>
public sealed record DemoSegment(string Text, bool IsObservation);

/// <summary>
/// Cold-start demonstrations for <see cref="SearchWorld"/> questions in Search-R1's format: per hop a short &lt;think&gt;, a
/// &lt;search&gt; of the hop's entity and the retriever's real answer, then &lt;think&gt; and &lt;answer&gt;; terse ones leave
/// the &lt;think&gt; blocks out (the actions alone, for a small policy whose every sampled token costs a decoding step).
/// Observations are encoded exactly as <see cref="SearchRollout"/> encodes them and carry no loss.
/// </summary>
public static class Demonstrations
{
    /// <summary>The trajectory for <paramref name="q"/>, or null when a hop's passage is not among the top-k (nothing to learn from).</summary>
    public static IReadOnlyList<DemoSegment>? For(WorldQuestion q, IRetriever retriever, int topK, bool terse = false)
    {
        var segments = new List<DemoSegment>();
        for (int h = 0; h < q.Hops.Count; h++)
        {
            var hop = q.Hops[h];
            string think = terse ? "" : h == 0 ? $"<think>I need to search {hop.Entity}.</think>\n" : $"<think>Now I need to search {hop.Entity}.</think>\n";
            segments.Add(new DemoSegment($"{think}<search> {hop.Entity} </search>", false));
            var found = retriever.Retrieve([hop.Entity], topK)[0];
            if (!found.Any(p => p.Document.Id == hop.PassageId)) return null;
            segments.Add(new DemoSegment(SearchR1Protocol.FormatPassages(found), true));
        }
        string answer = q.GoldenAnswers[0];
        segments.Add(new DemoSegment($"{(terse ? "" : $"<think>The answer is {answer}.</think>\n")}<answer> {answer} </answer>", false));
        return segments;
    }

    /// <summary>(ids, loss mask) of a demonstration's response: the model's text with mask 1, each observation as <see cref="SearchR1Protocol.ObservationTokens"/> with mask 0.</summary>
    public static (int[] Ids, float[] LossMask) Encode(IReadOnlyList<DemoSegment> segments, TextCodec codec, int maxObservationTokens)
    {
        var ids = new List<int>();
        var mask = new List<float>();
        foreach (var s in segments)
        {
            var t = s.IsObservation ? SearchR1Protocol.ObservationTokens(s.Text, codec.Encode, maxObservationTokens) : codec.Encode(s.Text);
            ids.AddRange(t);
            mask.AddRange(Enumerable.Repeat(s.IsObservation ? 0f : 1f, t.Length));
        }
        return ([.. ids], [.. mask]);
    }
}

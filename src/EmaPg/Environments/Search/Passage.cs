namespace EmaPg.Environments.Search;

/// <summary>
/// One corpus passage in Search-R1's form: <see cref="Contents"/> is the title on the first line (wiki-18 keeps it in
/// double quotes), then the text.
/// </summary>
public sealed record Passage(string Id, string Contents)
{
    /// <summary>The first line of <see cref="Contents"/>, as Search-R1's <c>_passages2string</c> takes it (quotes kept).</summary>
    public string Title => Contents.Split('\n', 2)[0];
    /// <summary>Everything after the first line.</summary>
    public string Text => Contents.Split('\n', 2) is { Length: 2 } parts ? parts[1] : "";

    /// <summary>The wiki-18 layout for a {"title","text"} row: "\"Title\"\ntext".</summary>
    public static string ContentsOf(string title, string text) => $"\"{title}\"\n{text}";
}

/// <summary>A passage and its retrieval score (BM25 for the Lucene index, whatever the server reports over HTTP).</summary>
public sealed record RetrievedPassage(Passage Document, double Score);

/// <summary>
/// Top-k passages for a batch of queries: the in-process Lucene index (<see cref="Bm25Retriever"/>) or a Search-R1
/// retrieval server (<see cref="HttpRetriever"/>). A failure throws <see cref="RetrieverException"/>, never an empty result
/// that looks like "nothing found".
/// </summary>
public interface IRetriever
{
    /// <summary>Result i holds at most <paramref name="topK"/> passages for query i, best first.</summary>
    IReadOnlyList<IReadOnlyList<RetrievedPassage>> Retrieve(IReadOnlyList<string> queries, int topK);
}

/// <summary>The retriever could not answer (server down, timeouts exhausted, a reply that breaks the protocol).</summary>
public sealed class RetrieverException(string message, Exception? inner = null) : Exception(message, inner);

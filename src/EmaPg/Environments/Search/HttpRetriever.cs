using System.Net;
using System.Text;
using EmaPg.Common;

namespace EmaPg.Environments.Search;

/// <summary>Bounds of <see cref="HttpRetriever"/>: a timeout per attempt, a number of attempts and the first back-off (doubled after each retry).</summary>
public sealed record HttpRetrieverOptions
{
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
    public int MaxAttempts { get; init; } = 3;
    public TimeSpan Backoff { get; init; } = TimeSpan.FromSeconds(0.5);
}

/// <summary>
/// A Search-R1 retrieval server over HTTP (Search-R1's own e5/BM25 servers, or <c>emapg search serve</c>). Transport
/// errors, timeouts and 5xx replies are retried within <see cref="HttpRetrieverOptions"/>; a 4xx reply or a reply that
/// breaks <see cref="RetrievalProtocol"/> fails at once. Every failure is a <see cref="RetrieverException"/> naming the URL.
/// </summary>
public sealed class HttpRetriever : IRetriever, IDisposable
{
    private readonly HttpClient _http;
    private readonly HttpRetrieverOptions _options;

    public HttpRetriever(string url, HttpRetrieverOptions? options = null, HttpMessageHandler? handler = null)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new UserError($"--retriever must be an http(s) URL such as http://127.0.0.1:8000/retrieve, got '{url}'.");
        _options = options ?? new HttpRetrieverOptions();
        Check.Range("retriever attempts", _options.MaxAttempts, 1, 100);
        Url = uri;
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        _http.Timeout = System.Threading.Timeout.InfiniteTimeSpan;   // each attempt has its own deadline
    }

    public Uri Url { get; }

    public IReadOnlyList<IReadOnlyList<RetrievedPassage>> Retrieve(IReadOnlyList<string> queries, int topK)
    {
        if (queries.Count == 0) return [];
        string body = RetrievalProtocol.SerializeRequest(queries, topK);
        string? lastError = null;
        for (int attempt = 1; attempt <= _options.MaxAttempts; attempt++)
        {
            if (attempt > 1) Thread.Sleep(_options.Backoff * Math.Pow(2, attempt - 2));
            using var cts = new CancellationTokenSource(_options.Timeout);
            string reply;
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, Url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                using var response = _http.Send(request, cts.Token);
                using var reader = new StreamReader(response.Content.ReadAsStream(cts.Token));
                reply = reader.ReadToEnd();
                if ((int)response.StatusCode is >= 400 and < 500)
                    throw new RetrieverException($"retriever {Url} rejected the request: {(int)response.StatusCode} {response.StatusCode}: {Truncate(reply)}");
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    lastError = $"{(int)response.StatusCode} {response.StatusCode}: {Truncate(reply)}";
                    continue;
                }
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
            {
                lastError = cts.IsCancellationRequested ? $"no reply within {_options.Timeout.TotalSeconds:0.###} s" : e.Message;
                continue;
            }
            try { return RetrievalProtocol.ParseResponse(reply, queries.Count); }
            catch (FormatException e) { throw new RetrieverException($"retriever {Url} broke the retrieval protocol: {e.Message}"); }
        }
        throw new RetrieverException($"retriever {Url} failed after {_options.MaxAttempts} attempt(s): {lastError}");
    }

    private static string Truncate(string s) => s.Length <= 200 ? s : s[..200] + "…";

    public void Dispose() => _http.Dispose();
}

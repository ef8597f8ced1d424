using System.Net;
using System.Text;
using EmaPg.Common;
using EmaPg.Environments.Search;

namespace EmaPg.Tests.Environments.Search;

public sealed class RetrievalTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emapg-retrieval-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string[] CorpusLines =
    [
        """{"id": "0", "contents": "\"Zorvath Keep\"\nZorvath Keep is a granite fortress on the cliffs of Ulmira, built by the mason Tessaly Brone."}""",
        """{"id": "1", "contents": "\"Tessaly Brone\"\nTessaly Brone was a mason born in the river town of Quellport. She designed bridges and towers."}""",
        """{"title": "Quellport", "text": "Quellport is a river town famous for its copper bells and its annual lantern festival."}""",
        "",
        """{"id": 7, "contents": "\"Ulmira\"\nUlmira is a windswept coast where fishermen dry kelp on wooden racks."}""",
    ];

    private string WriteCorpus(params string[] lines)
    {
        var path = Path.Combine(_dir, $"corpus-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void CorpusReaderAcceptsBothSearchR1LayoutsAndSkipsBlankLines()
    {
        var passages = CorpusReader.Read(WriteCorpus(CorpusLines)).ToList();
        Assert.Equal(["0", "1", "2", "7"], passages.Select(p => p.Id));
        Assert.Equal("\"Quellport\"\nQuellport is a river town famous for its copper bells and its annual lantern festival.", passages[2].Contents);
        Assert.Equal("\"Tessaly Brone\"", passages[1].Title);
        Assert.StartsWith("Tessaly Brone was a mason", passages[1].Text);
    }

    [Theory]
    [InlineData("not json", "not a JSON object")]
    [InlineData("[1, 2]", "expected a JSON object")]
    [InlineData("""{"id": "9"}""", "needs \"contents\" or both \"title\" and \"text\"")]
    [InlineData("""{"id": "9", "contents": 3}""", "\"contents\" must be a string")]
    [InlineData("""{"id": [1], "contents": "x"}""", "\"id\" must be a string or a number")]
    public void AMalformedLineNamesFileAndLine(string bad, string message)
    {
        var path = WriteCorpus(CorpusLines[0], CorpusLines[1], bad);
        var e = Assert.Throws<UserError>(() => CorpusReader.Read(path).ToList());
        Assert.StartsWith($"{path}:3: ", e.Message);
        Assert.Contains(message, e.Message);
        var build = Assert.Throws<UserError>(() => Bm25Index.Build(path, Path.Combine(_dir, "idx-bad")));
        Assert.StartsWith($"{path}:3: ", build.Message);
    }

    [Fact]
    public void BuiltIndexRanksThePassageThatAnswersFirst()
    {
        var outDir = Path.Combine(_dir, "idx");
        var seen = new List<long>();
        var report = Bm25Index.Build(WriteCorpus(CorpusLines), outDir, seen.Add);
        Assert.Equal(4, report.Passages);
        Assert.Empty(seen);   // progress comes every 100 000 passages
        using var r = Bm25Index.Open(outDir);
        Assert.Equal(4, r.Count);
        var results = r.Retrieve(["where was the mason Tessaly Brone born?", "copper bells festival", "kelp racks", "xylophone"], 3);
        Assert.Equal("1", results[0][0].Document.Id);
        Assert.Equal("2", results[1][0].Document.Id);
        Assert.Equal("7", results[2][0].Document.Id);
        Assert.Empty(results[3]);   // no term of the query is in the corpus
        // Query text is words, never syntax: Lucene operators and unbalanced quotes are just text.
        Assert.Equal("1", r.Retrieve(["(Tessaly\" AND* [Brone -mason~ \\"], 1)[0][0].Document.Id);
        Assert.Empty(r.Retrieve([""], 1)[0]);
        Assert.True(results[0].Zip(results[0].Skip(1)).All(p => p.First.Score >= p.Second.Score));
        Assert.True(results[0][0].Score > results[0][1].Score);
        // Stored contents come back exactly as the corpus line had them.
        Assert.Equal("\"Ulmira\"\nUlmira is a windswept coast where fishermen dry kelp on wooden racks.", results[2][0].Document.Contents);
        // The same passages in memory give the same ranking and scores.
        using var mem = Bm25Index.InMemory(CorpusReader.Read(WriteCorpus(CorpusLines)));
        var again = mem.Retrieve(["where was the mason Tessaly Brone born?"], 3)[0];
        Assert.Equal(results[0].Select(x => (x.Document.Id, x.Score)), again.Select(x => (x.Document.Id, x.Score)));
    }

    [Fact]
    public void BuildRefusesANonEmptyOutputAndOpenRefusesANonIndex()
    {
        var corpus = WriteCorpus(CorpusLines);
        Assert.Contains("is not empty", Assert.Throws<UserError>(() => Bm25Index.Build(corpus, _dir)).Message);
        Assert.Contains("holds no Lucene index", Assert.Throws<UserError>(() => Bm25Index.Open(_dir)).Message);
        Assert.Contains("does not exist", Assert.Throws<UserError>(() => Bm25Index.Open(Path.Combine(_dir, "nope"))).Message);
        Assert.Contains("holds no passages", Assert.Throws<UserError>(() => Bm25Index.Build(WriteCorpus("", ""), Path.Combine(_dir, "empty"))).Message);
    }

    [Fact]
    public async Task ServerAnswersSearchR1sProtocolAndTheHttpRetrieverReadsIt()
    {
        using var index = Bm25Index.InMemory(CorpusReader.Read(WriteCorpus(CorpusLines)));
        await using var server = await RetrievalServer.StartAsync(index, "127.0.0.1", 0, defaultTopK: 2);
        Assert.NotEqual(0, server.Url.Port);

        using var http = new HttpClient();
        // A Search-R1 client's request, verbatim.
        var reply = await http.PostAsync(server.Url, new StringContent("""{"queries": ["Tessaly Brone mason", "lantern festival"], "topk": 1, "return_scores": true}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        var body = System.Text.Json.JsonDocument.Parse(await reply.Content.ReadAsStringAsync()).RootElement.GetProperty("result");
        Assert.Equal(2, body.GetArrayLength());
        var first = body[0][0];
        Assert.Equal("1", first.GetProperty("document").GetProperty("id").GetString());
        Assert.StartsWith("\"Tessaly Brone\"\n", first.GetProperty("document").GetProperty("contents").GetString());
        Assert.True(first.GetProperty("score").GetDouble() > 0);
        Assert.Equal("2", body[1][0].GetProperty("document").GetProperty("id").GetString());

        // Without return_scores the items are the documents; without topk the server's default applies.
        reply = await http.PostAsync(server.Url, new StringContent("""{"queries": ["Quellport river town"]}"""));
        var plain = System.Text.Json.JsonDocument.Parse(await reply.Content.ReadAsStringAsync()).RootElement.GetProperty("result")[0];
        Assert.Equal(2, plain.GetArrayLength());
        Assert.Equal("2", plain[0].GetProperty("id").GetString());

        reply = await http.PostAsync(server.Url, new StringContent("""{"queries": "one"}"""));
        Assert.Equal(HttpStatusCode.BadRequest, reply.StatusCode);
        Assert.Contains("queries", await reply.Content.ReadAsStringAsync());
        reply = await http.PostAsync(server.Url, new StringContent("""{"queries": ["a"], "topk": 0}"""));
        Assert.Equal(HttpStatusCode.BadRequest, reply.StatusCode);

        using var remote = new HttpRetriever(server.Url.ToString());
        var queries = new[] { "where was the mason Tessaly Brone born?", "kelp", "xylophone" };
        var viaHttp = remote.Retrieve(queries, 3);
        var local = index.Retrieve(queries, 3);
        Assert.Equal(local.Select(l => l.Select(x => (x.Document, x.Score))), viaHttp.Select(l => l.Select(x => (x.Document, x.Score))));
    }

    /// <summary>Answers with the given status codes in turn (the last one repeats), or delays, and counts calls.</summary>
    private sealed class ScriptedHandler(Func<int, HttpResponseMessage?> script) : HttpMessageHandler
    {
        public int Calls;

        protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken ct)
        {
            int call = ++Calls;
            var r = script(call);
            if (r is null) { ct.WaitHandle.WaitOne(); ct.ThrowIfCancellationRequested(); }
            return r!;
        }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct) => Task.FromResult(Send(request, ct));
    }

    private static HttpResponseMessage Status(HttpStatusCode code, string body = "") => new(code) { Content = new StringContent(body) };

    private static readonly HttpRetrieverOptions Fast = new() { Timeout = TimeSpan.FromMilliseconds(200), MaxAttempts = 3, Backoff = TimeSpan.FromMilliseconds(1) };

    [Fact]
    public void HttpRetrieverRetriesServerErrorsThenFailsNamingTheUrl()
    {
        var handler = new ScriptedHandler(_ => Status(HttpStatusCode.ServiceUnavailable, "warming up"));
        using var r = new HttpRetriever("http://10.0.0.1:8000/retrieve", Fast, handler);
        var e = Assert.Throws<RetrieverException>(() => r.Retrieve(["q"], 3));
        Assert.Equal(3, handler.Calls);
        Assert.Equal("retriever http://10.0.0.1:8000/retrieve failed after 3 attempt(s): 503 ServiceUnavailable: warming up", e.Message);
    }

    [Fact]
    public void HttpRetrieverTimesOutEachAttempt()
    {
        var handler = new ScriptedHandler(_ => null);
        using var r = new HttpRetriever("http://10.0.0.1:8000/retrieve", Fast with { MaxAttempts = 2 }, handler);
        var e = Assert.Throws<RetrieverException>(() => r.Retrieve(["q"], 3));
        Assert.Equal(2, handler.Calls);
        Assert.EndsWith("failed after 2 attempt(s): no reply within 0.2 s", e.Message);
    }

    [Fact]
    public void HttpRetrieverSucceedsAfterATransientFailure()
    {
        const string ok = """{"result": [[{"document": {"id": "5", "contents": "\"T\"\nbody"}, "score": 1.5}]]}""";
        var handler = new ScriptedHandler(call => call == 1 ? throw new HttpRequestException("connection refused") : Status(HttpStatusCode.OK, ok));
        using var r = new HttpRetriever("http://10.0.0.1:8000/retrieve", Fast, handler);
        var result = r.Retrieve(["q"], 1);
        Assert.Equal(2, handler.Calls);
        Assert.Equal(new RetrievedPassage(new Passage("5", "\"T\"\nbody"), 1.5), Assert.Single(Assert.Single(result)));
    }

    [Theory]
    [InlineData(400, "{\"detail\": \"bad\"}", "rejected the request: 400 BadRequest")]
    [InlineData(200, "{\"result\": []}", "broke the retrieval protocol: the reply has 0 results for 1 queries")]
    [InlineData(200, "<html>", "broke the retrieval protocol: the reply is not JSON")]
    [InlineData(200, "{\"result\": [[{\"document\": {\"id\": \"1\"}}]]}", "a document needs a string \"contents\"")]
    public void RejectionsAndProtocolViolationsFailAtOnce(int status, string body, string message)
    {
        var handler = new ScriptedHandler(_ => Status((HttpStatusCode)status, body));
        using var r = new HttpRetriever("http://10.0.0.1:8000/retrieve", Fast, handler);
        var e = Assert.Throws<RetrieverException>(() => r.Retrieve(["q"], 3));
        Assert.Equal(1, handler.Calls);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void TheProtocolAcceptsPyserinisTitleTextDocuments()
    {
        var parsed = RetrievalProtocol.ParseResponse("""{"result": [[{"document": {"title": "A", "text": "b", "contents": "\"A\"\nb"}, "score": 2}], []]}""", 2);
        Assert.Equal(new Passage("", "\"A\"\nb"), parsed[0][0].Document);
        Assert.Empty(parsed[1]);
        Assert.Contains("http(s) URL", Assert.Throws<UserError>(() => new HttpRetriever("localhost:8000")).Message);
    }
}

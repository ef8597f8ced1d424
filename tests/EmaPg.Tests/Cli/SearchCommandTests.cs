using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace EmaPg.Tests.Cli;

[Collection("console")]
public sealed class SearchCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emapg-search-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Corpus()
    {
        var path = Path.Combine(_dir, "corpus.jsonl");
        File.WriteAllLines(path,
        [
            """{"id": "a", "contents": "\"Quellport\"\nQuellport is a river town famous for copper bells."}""",
            """{"id": "b", "contents": "\"Tessaly Brone\"\nTessaly Brone was a mason born in Quellport."}""",
            """{"title": "Ulmira", "text": "Ulmira is a windswept coast."}""",
        ]);
        return path;
    }

    [Fact]
    public void IndexBuildThenSearchPrintsTheTopPassages()
    {
        var index = Path.Combine(_dir, "index");
        var (code, stdout, _) = CliRunner.Run("index", "build", "--corpus", Corpus(), "--out", index);
        Assert.Equal(0, code);
        Assert.StartsWith($"index {index}: 3 passages from ", stdout);

        (code, stdout, _) = CliRunner.Run("search", "--index", index, "--query", "mason Tessaly", "--topk", "2", "--json");
        Assert.Equal(0, code);
        var result = JsonDocument.Parse(stdout).RootElement.GetProperty("result");
        Assert.Equal("b", result[0][0].GetProperty("document").GetProperty("id").GetString());
        Assert.Equal("\"Tessaly Brone\"\nTessaly Brone was a mason born in Quellport.", result[0][0].GetProperty("document").GetProperty("contents").GetString());

        (code, stdout, _) = CliRunner.Run("search", "--index", index, "--query", "windswept coast");
        Assert.Equal(0, code);
        Assert.Matches(@"^1\. \[2\] \d+\.\d{4} ""Ulmira""\n   Ulmira is a windswept coast\.\n$", stdout.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void BadInputIsOneLineNamingTheProblem()
    {
        var bad = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllLines(bad, ["""{"id": "a", "contents": "x"}""", """{"id": "b"}"""]);
        var (code, _, err) = CliRunner.Run("index", "build", "--corpus", bad, "--out", Path.Combine(_dir, "i"));
        Assert.Equal(2, code);
        Assert.Equal($"error: {bad}:2: a passage needs \"contents\" or both \"title\" and \"text\".", err.Trim());
        (code, _, err) = CliRunner.Run("search", "--index", Path.Combine(_dir, "none"), "--query", "q");
        Assert.Equal(2, code);
        Assert.Contains("does not exist (build one with 'emapg index build')", err);
        (code, _, err) = CliRunner.Run("search", "--index", _dir);
        Assert.Equal(2, code);
        Assert.Contains("--query is required", err);
    }

    [Fact]
    public async Task SearchServeAnswersASearchR1Client()
    {
        var index = Path.Combine(_dir, "index");
        Assert.Equal(0, CliRunner.Run("index", "build", "--corpus", Corpus(), "--out", index).Code);
        using var p = CliProcess.Start(null, "search", "serve", "--index", index, "--port", "0");
        try
        {
            var line = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(2));
            var url = Regex.Match(line ?? "", @"at POST (http://\S+/retrieve)").Groups[1].Value;
            Assert.True(url.Length > 0, $"no URL in '{line}'");
            Assert.Contains("serving 3 passages", line);
            using var http = new HttpClient();
            var reply = await http.PostAsync(url, new StringContent("""{"queries": ["copper bells", "coast"], "topk": 1, "return_scores": true}""", Encoding.UTF8, "application/json"));
            var result = JsonDocument.Parse(await reply.Content.ReadAsStringAsync()).RootElement.GetProperty("result");
            Assert.Equal(["a", "2"], result.EnumerateArray().Select(r => r[0].GetProperty("document").GetProperty("id").GetString()!));
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
    }
}

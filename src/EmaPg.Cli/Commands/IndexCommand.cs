using System.CommandLine;
using System.Globalization;
using EmaPg.Environments.Search;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg index build --corpus FILE --out DIR`: a BM25 (Lucene) index of a Search-R1 corpus.</summary>
public static class IndexCommand
{
    public static Command Create()
    {
        var cmd = new Command("index", "BM25 indexes of Search-R1 corpora for the search environment.");
        var build = new Command("build", "Stream a JSONL corpus ({\"id\",\"contents\"} or {\"title\",\"text\"} per line) into a new Lucene BM25 index (k1 0.9, b 0.4, English analysis).");
        var corpus = new Option<string>("--corpus") { Description = "JSONL corpus file", Required = true };
        var output = new Option<string>("--out") { Description = "New or empty directory for the index", Required = true };
        build.Options.Add(corpus);
        build.Options.Add(output);
        build.SetAction(pr =>
        {
            var started = DateTime.UtcNow;
            var report = Bm25Index.Build(pr.GetValue(corpus)!, pr.GetValue(output)!, n =>
                Console.Error.WriteLine($"indexed {n.ToString("N0", CultureInfo.InvariantCulture)} passages ({n / Math.Max(1e-9, (DateTime.UtcNow - started).TotalSeconds):F0}/s)"));
            Console.WriteLine($"index {report.IndexDirectory}: {report.Passages.ToString("N0", CultureInfo.InvariantCulture)} passages from {report.Corpus} in {report.Seconds:F1} s");
            return 0;
        });
        cmd.Subcommands.Add(build);
        return cmd;
    }
}

using System.CommandLine;
using System.Globalization;
using EmaPg.Common;
using EmaPg.Environments.Search;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg search --index DIR --query Q` and `emapg search serve --index DIR --port P` (Search-R1's retrieval protocol).</summary>
public static class SearchCommand
{
    public static Command Create()
    {
        var cmd = new Command("search", "Query a BM25 index: top-k passages of a query, or 'search serve' for Search-R1's POST /retrieve protocol.");
        var index = new Option<string>("--index") { Description = "Index directory (from 'emapg index build')", Required = true };
        var query = new Option<string>("--query") { Description = "The query text (required unless serving)" };
        var topk = new Option<int>("--topk") { Description = "Passages to return, 1–1000", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print the protocol's reply {\"result\":[[{\"document\":…,\"score\":…}]]} instead of text" };
        foreach (var o in new Option[] { index, query, topk, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            string q = pr.GetValue(query) ?? throw new UserError("--query is required (or use 'emapg search serve').");
            int k = Check.Range("--topk", pr.GetValue(topk), 1, 1000);
            using var retriever = Bm25Index.Open(pr.GetValue(index)!);
            var results = retriever.Retrieve([q], k);
            if (pr.GetValue(json)) Console.WriteLine(RetrievalProtocol.SerializeResponse(results, returnScores: true));
            else
                foreach (var (r, i) in results[0].Select((r, i) => (r, i)))
                    Console.WriteLine($"{i + 1}. [{r.Document.Id}] {r.Score.ToString("F4", CultureInfo.InvariantCulture)} {r.Document.Title}\n   {r.Document.Text.ReplaceLineEndings(" ")}");
            return 0;
        });
        cmd.Subcommands.Add(Serve());
        return cmd;
    }

    private static Command Serve()
    {
        var cmd = new Command("serve", "Serve an index with Search-R1's retrieval protocol: POST /retrieve {\"queries\":[…],\"topk\":k,\"return_scores\":true}. Runs until Ctrl+C.");
        var index = new Option<string>("--index") { Description = "Index directory (from 'emapg index build')", Required = true };
        var port = new Option<int>("--port") { Description = "TCP port, 0–65535 (0: any free port)", DefaultValueFactory = _ => 8000 };
        var host = new Option<string>("--host") { Description = "Address to listen on (0.0.0.0 for other machines)", DefaultValueFactory = _ => "127.0.0.1" };
        var topk = new Option<int>("--topk") { Description = "Passages per query when a request gives no topk, 1–1000", DefaultValueFactory = _ => 3 };
        foreach (var o in new Option[] { index, port, host, topk }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            using var retriever = Bm25Index.Open(pr.GetValue(index)!);
            using var stop = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
            var server = RetrievalServer.StartAsync(retriever, pr.GetValue(host)!, pr.GetValue(port), pr.GetValue(topk)).GetAwaiter().GetResult();
            Console.WriteLine($"serving {retriever.Count.ToString("N0", CultureInfo.InvariantCulture)} passages of {retriever.Name} at POST {server.Url} (Ctrl+C stops)");
            server.WaitAsync(stop.Token).GetAwaiter().GetResult();
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return 0;
        });
        return cmd;
    }
}

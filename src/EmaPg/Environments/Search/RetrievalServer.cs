using EmaPg.Common;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EmaPg.Environments.Search;

/// <summary>
/// Serves <see cref="RetrievalProtocol"/> at <c>POST /retrieve</c> from any <see cref="IRetriever"/> (ASP.NET Core minimal
/// API), so that several trainers share one index. A malformed request gets 400 with {"error": …}; a request without
/// "topk" gets <c>defaultTopK</c>, as Search-R1's server does.
/// </summary>
public sealed class RetrievalServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private RetrievalServer(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    /// <summary>The retrieve endpoint, with the port actually bound (port 0 asks the system for a free one).</summary>
    public Uri Url { get; }

    public static async Task<RetrievalServer> StartAsync(IRetriever retriever, string host, int port, int defaultTopK, int maxQueries = 4096)
    {
        Check.Range("--port", port, 0, 65535);
        Check.Range("--topk", defaultTopK, 1, 1000);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{host}:{port}");
        var app = builder.Build();
        app.MapPost("/retrieve", async (HttpContext ctx) =>
        {
            string body;
            using (var reader = new StreamReader(ctx.Request.Body)) body = await reader.ReadToEndAsync(ctx.RequestAborted);
            RetrievalProtocol.Request request;
            try
            {
                request = RetrievalProtocol.ParseRequest(body);
                if (request.Queries.Count > maxQueries) throw new FormatException($"at most {maxQueries} queries per request, got {request.Queries.Count}.");
                int k = request.TopK ?? defaultTopK;
                if (k is < 1 or > 1000) throw new FormatException($"\"topk\" must be in [1, 1000], got {k}.");
                request = request with { TopK = k };
            }
            catch (FormatException e)
            {
                return Results.Json(new { error = e.Message }, statusCode: StatusCodes.Status400BadRequest);
            }
            var results = retriever.Retrieve(request.Queries, request.TopK!.Value);
            return Results.Text(RetrievalProtocol.SerializeResponse(results, request.ReturnScores), "application/json");
        });
        try { await app.StartAsync(); }
        catch (IOException e) { await app.DisposeAsync(); throw new UserError($"cannot listen on {host}:{port}: {e.Message}"); }
        var bound = new Uri(app.Urls.First());
        return new RetrievalServer(app, new Uri(bound, "/retrieve"));
    }

    /// <summary>Blocks until <paramref name="stop"/> fires (the CLI passes Ctrl+C).</summary>
    public Task WaitAsync(CancellationToken stop) => _app.WaitForShutdownAsync(stop);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

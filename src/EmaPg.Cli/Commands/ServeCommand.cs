using System.CommandLine;
using EmaPg.Serving;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg serve`: an OpenAI-compatible server over a model folder.</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var cmd = new Command("serve", "OpenAI-compatible server over a Hugging Face model folder: /v1/models, /v1/completions, /v1/chat/completions (logprobs in vLLM's shape), weight reloads (/update_weights_from_disk, /collective_rpc reload_weights).");
        var model = new Option<string>("--model") { Description = "Model folder", Required = true };
        var host = new Option<string>("--host") { Description = "Address to listen on (an IP address or localhost)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port, 0 = any free one (printed)", DefaultValueFactory = _ => 8000 };
        var name = new Option<string>("--served-model-name") { Description = "Model id of /v1/models (default: the folder's name)" };
        var maxLogprobs = new Option<int>("--max-logprobs") { Description = "Largest logprobs / top_logprobs a request may ask for", DefaultValueFactory = _ => 20 };
        var maxBatch = new Option<int>("--max-batch") { Description = "Most sequences sampled in one batch", DefaultValueFactory = _ => 256 };
        var seed = new Option<long>("--seed") { Description = "Seed of the generator of requests without a seed", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "Intra-op CPU threads, 0 = TorchSharp's default", DefaultValueFactory = _ => 0 };
        foreach (var o in new Option[] { model, host, port, name, maxLogprobs, maxBatch, seed, threads }) cmd.Options.Add(o);
        cmd.SetAction(async (pr, ct) =>
        {
            if (pr.GetValue(threads) > 0) TorchSharp.torch.set_num_threads(pr.GetValue(threads));
            await using var server = await ModelServer.StartAsync(new ServeOptions
            {
                ModelDir = pr.GetValue(model)!, Host = pr.GetValue(host)!, Port = pr.GetValue(port), ServedModelName = pr.GetValue(name),
                MaxLogprobs = pr.GetValue(maxLogprobs), MaxBatchRows = pr.GetValue(maxBatch), Seed = pr.GetValue(seed),
            });
            // One line a script can wait for and read the port from.
            Console.WriteLine($"emapg serve: {server.ModelName} listening on {server.Address}");
            await server.WaitForShutdownAsync(ct);
            return 0;
        });
        return cmd;
    }
}

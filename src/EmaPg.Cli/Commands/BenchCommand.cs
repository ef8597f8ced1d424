using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EmaPg.Bench;
using EmaPg.Common;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Cli.Commands;

/// <summary>
/// `emapg bench kl`: time and memory of exact reverse KL (full logits) against Top-k reverse KL (O(k) inputs).
/// `emapg bench adamw`: TorchSharp's AdamW against the library's in-place one.
/// `emapg bench tokenizer`: encoding throughput of HF's Rust tokenizers (Tokenizers.DotNet) against Microsoft.ML.Tokenizers.
/// `emapg bench head`: the unfused LM head + loss (full logits) against the fused loss (row chunks, three GEMMs), and the GEMM floor.
/// `emapg bench train-step`, `emapg bench sample`: a whole update and KV-cached decoding of a real-shape model (BenchCommand.Model.cs).
/// </summary>
public static partial class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Benchmarks.");
        cmd.Subcommands.Add(CreateKl());
        cmd.Subcommands.Add(CreateAdamW());
        cmd.Subcommands.Add(CreateTokenizer());
        cmd.Subcommands.Add(CreateLoad());
        cmd.Subcommands.Add(CreateHead());
        cmd.Subcommands.Add(CreateTrainStep());
        cmd.Subcommands.Add(CreateSample());
        cmd.Subcommands.Add(CreateRollout());
        return cmd;
    }

    private static Command CreateRollout()
    {
        var cmd = new Command("rollout", "Rollout throughput of the HTTP rollout engine on running servers: the first server alone vs all of them (the trainer's requests: token-id prompts, n samples, logprobs; weight sync before each rollout timed apart).");
        var servers = new Option<string>("--servers") { Description = "Comma-separated base URLs, e.g. http://127.0.0.1:8000,http://127.0.0.1:8001", Required = true };
        var model = new Option<string>("--model") { Description = "Model folder the servers load before each rollout", Required = true };
        var prompts = new Option<int>("--prompts") { Description = "Prompts per rollout (8 random token ids each)", DefaultValueFactory = _ => 32 };
        var n = new Option<int>("--n") { Description = "Samples per prompt", DefaultValueFactory = _ => 8 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens per sample (no stop tokens)", DefaultValueFactory = _ => 32 };
        var concurrency = new Option<int>("--concurrency") { Description = "Requests in flight per server", DefaultValueFactory = _ => 4 };
        var reps = new Option<int>("--reps") { Description = "Timed rollouts per server set, after one untimed warm-up; medians are reported", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON instead of a table" };
        foreach (var o in new Option[] { servers, model, prompts, n, maxTokens, concurrency, reps, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            var report = RolloutBench.Run(new RolloutBenchOptions
            {
                Servers = EmaPg.Rollout.HttpRolloutOptions.ParseServers(pr.GetValue(servers)!), Model = pr.GetValue(model)!,
                Prompts = pr.GetValue(prompts), N = pr.GetValue(n), MaxTokens = pr.GetValue(maxTokens), Concurrency = pr.GetValue(concurrency), Reps = pr.GetValue(reps),
            }, msg => Console.Error.WriteLine($"bench rollout: {msg}"));
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
                return 0;
            }
            var t = new Table().Border(TableBorder.Rounded)
                .Title($"Rollout: {report.Prompts} prompts × n = {report.N} × {report.MaxTokens} tokens, {report.Concurrency} requests in flight per server, median of {report.Rows[0].TokensPerSecond.Count}")
                .AddColumns("servers", "tokens/s, median", "per rep", "weight sync (s), median");
            foreach (var r in report.Rows)
                t.AddRow(r.Servers.ToString(CultureInfo.InvariantCulture), r.TokensPerSecondMedian.ToString("0", CultureInfo.InvariantCulture),
                    string.Join(" ", r.TokensPerSecond.Select(x => x.ToString("0", CultureInfo.InvariantCulture))), r.SyncSecondsMedian.ToString("0.00", CultureInfo.InvariantCulture));
            AnsiConsole.Write(t);
            if (report.SpeedupAllOverOne is { } s) Console.WriteLine($"all servers ÷ first server: {s.ToString("0.00", CultureInfo.InvariantCulture)}×");
            return 0;
        });
        return cmd;
    }

    private static Command CreateTokenizer()
    {
        var cmd = new Command("tokenizer", "Encoding throughput (tokens/s) of Hugging Face's Rust tokenizers via Tokenizers.DotNet (what the library uses) and of Microsoft.ML.Tokenizers' BpeTokenizer on the same tokenizer.json and text, whole and line by line, with their ratio and how many calls give HF's ids.");
        var model = new Option<string>("--model") { Description = "Model directory with tokenizer.json and tokenizer_config.json", Required = true };
        var input = new Option<string>("--input") { Description = "UTF-8 text file to encode (whole, and each line)", Required = true };
        var reps = new Option<int>("--reps") { Description = "Timed passes per library and workload, 1..1000; medians are reported", DefaultValueFactory = _ => 5 };
        var goldens = new Option<string[]>("--goldens") { Description = "Golden files of HF's tokenizer ({\"encodings\": [{\"text\", \"ids\"}…]}, e.g. tests/EmaPg.Tests/Fixtures/hf/tokenizers/qwen3.json) on which both libraries' ids are checked", AllowMultipleArgumentsPerToken = true };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON instead of a table" };
        foreach (var o in new Option[] { model, input, reps, goldens, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            string file = pr.GetValue(input)!;
            if (!File.Exists(file)) throw new UserError($"--input: file '{file}' does not exist.");
            var goldenFiles = pr.GetValue(goldens) ?? [];
            foreach (var g in goldenFiles)
                if (!File.Exists(g)) throw new UserError($"--goldens: file '{g}' does not exist.");
            var opts = new TokenizerBenchOptions { ModelDir = pr.GetValue(model)!, InputPath = file, Reps = Check.Range("--reps", pr.GetValue(reps), 1, 1000), Goldens = goldenFiles };
            var report = TokenizerBench.Run(opts, msg => Console.Error.WriteLine($"bench tokenizer: {msg}"));
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
                return 0;
            }
            RenderTokenizer(report);
            return 0;
        });
        return cmd;
    }

    private static void RenderTokenizer(TokenizerBenchReport rep)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
        var t = new Table().Border(TableBorder.Rounded)
            .Title($"Tokenizer encode: {Markup.Escape(rep.Model)}, {Markup.Escape(rep.Input)} ({rep.InputChars:N0} chars), median of {rep.Reps} passes, one thread")
            .AddColumns("workload", "library", "calls", "tokens", "pass (ms), median [[min–max]]", "tokens/s", "chars/s", "first pass tokens/s", "calls equal to HF");
        foreach (var r in rep.Rows)
            t.AddRow(r.Workload, Markup.Escape(r.Library), r.Calls.ToString(CultureInfo.InvariantCulture), r.Tokens.ToString(CultureInfo.InvariantCulture),
                $"{F(r.SecondsMedian * 1e3, "0.0")} [[{F(r.SecondsMin * 1e3, "0.0")}–{F(r.SecondsMax * 1e3, "0.0")}]]",
                F(r.TokensPerSecond, "N0"), F(r.CharsPerSecond, "N0"), F(r.FirstPassTokensPerSecond, "N0"), $"{r.CallsEqualToHf}/{r.Calls}");
        foreach (var (w, ratio) in rep.HfOverMlTokensPerSecond)
            t.AddRow($"[bold]{w}[/]", "[bold]HF ÷ ML tokens/s[/]", "", "", "", $"[bold]{X(ratio)}[/]", "", "", "");
        AnsiConsole.Write(t);
        if (rep.Parity.Count > 0)
        {
            var p = new Table().Border(TableBorder.Rounded).Title("Parity with HF tokenizers' goldens (ids, add_special_tokens=False)").AddColumns("goldens", "library", "texts equal to HF", "first mismatches");
            foreach (var r in rep.Parity)
                p.AddRow(Markup.Escape(Path.GetFileName(Path.GetDirectoryName(r.Goldens)) + "/" + Path.GetFileName(r.Goldens)), Markup.Escape(r.Library), $"{r.Equal}/{r.Texts}", Markup.Escape(string.Join(" ", r.FirstMismatches.Take(2).Select(m => m.Length > 48 ? m[..48] + "…" : m))));
            AnsiConsole.Write(p);
        }
        AnsiConsole.MarkupLine($"[grey]{Markup.Escape($"{rep.Date}, {rep.ProcessorCount} logical CPUs, {rep.Os}. Load: HF {rep.HfLoadSeconds:0.00} s, ML {rep.MlLoadSeconds:0.00} s.")}[/]");
        foreach (var (key, text) in rep.Definitions)
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape($"{key}: {text}")}[/]");
    }

    private static Command CreateKl()
    {
        var cmd = new Command("kl", "Exact reverse KL from full logits vs Top-k reverse KL from O(k) inputs (§5.3): median forward+backward time, stored inputs, peak memory, and their ratios.");
        var d = new KlBenchOptions();
        var q = KlBenchOptions.QuickDefaults;
        var vocab = new Option<string>("--vocab") { Description = $"Vocabulary sizes, comma list, each 2..{MaxVocab} (--quick: {string.Join(",", q.Vocab)})", DefaultValueFactory = _ => string.Join(",", d.Vocab) };
        var tokens = new Option<int>("--tokens") { Description = $"Tokens N per batch, 1..{MaxTokens} (--quick: {q.Tokens})", DefaultValueFactory = _ => d.Tokens };
        var k = new Option<int>("--k") { Description = $"Top-k size, 0..smallest vocab (--quick: {q.K})", DefaultValueFactory = _ => d.K };
        var reps = new Option<int>("--reps") { Description = $"Timed repetitions per estimator and vocab, 1..1000; medians are reported (--quick: {q.Reps})", DefaultValueFactory = _ => d.Reps };
        var dtype = new Option<string>("--dtype") { Description = "Floating dtype of logits and log-probs: float32 or float64", DefaultValueFactory = _ => "float32" };
        var device = new Option<string>("--device") { Description = "Device every tensor lives on: cpu, or cuda[:n] where available", DefaultValueFactory = _ => "cpu" };
        var seed = new Option<int>("--seed") { Description = "Seed of the synthetic problem", DefaultValueFactory = _ => 0 };
        var quick = new Option<bool>("--quick") { Description = "Tiny problem and 2 reps (smoke test; the figures mean nothing); explicit options still win" };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON instead of a table" };
        foreach (var o in new Option[] { vocab, tokens, k, reps, dtype, device, seed, quick, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            bool isQuick = pr.GetValue(quick);
            var b = isQuick ? KlBenchOptions.QuickDefaults : new KlBenchOptions();
            bool Given(Option o) => pr.GetResult(o) is { Implicit: false };
            var vocabs = Given(vocab) || !isQuick ? ParseVocab(pr.GetValue(vocab) ?? "") : b.Vocab;
            int n = Check.Range("--tokens", Given(tokens) || !isQuick ? pr.GetValue(tokens) : b.Tokens, 1, MaxTokens);
            int kk = Check.Range("--k", Given(k) || !isQuick ? pr.GetValue(k) : Math.Min(b.K, vocabs.Min()), 0, vocabs.Min());
            int r = Check.Range("--reps", Given(reps) || !isQuick ? pr.GetValue(reps) : b.Reps, 1, 1000);
            var dt = Check.OneOf("--dtype", pr.GetValue(dtype) ?? "", ["float32", "float64"]) == "float64" ? ScalarType.Float64 : ScalarType.Float32;
            var dev = ParseDevice(pr.GetValue(device) ?? "");
            var opts = b with { Vocab = vocabs, Tokens = n, K = kk, Reps = r, DType = dt, Device = dev, Seed = pr.GetValue(seed) };

            bool asJson = pr.GetValue(json);
            var report = KlBench.Run(opts, msg => Console.Error.WriteLine($"bench kl: {msg}"));
            if (asJson)
            {
                Console.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
                return 0;
            }
            Render(report);
            return 0;
        });
        return cmd;
    }

    private static Command CreateAdamW()
    {
        var cmd = new Command("adamw", "TorchSharp's torch.optim.AdamW vs the library's in-place AdamW on a 116.6M-parameter Qwen2 and on the trainer's policy: median step time, peak memory, their ratios, and the largest parameter difference.");
        var d = new AdamWBenchOptions();
        var q = AdamWBenchOptions.QuickDefaults;
        var reps = new Option<int>("--reps") { Description = $"Timed steps per optimiser and model, 1..1000; medians are reported (--quick: {q.Reps})", DefaultValueFactory = _ => d.Reps };
        var warmup = new Option<int>("--warmup") { Description = $"Untimed steps first, 1..100 (--quick: {q.Warmup})", DefaultValueFactory = _ => d.Warmup };
        var seed = new Option<int>("--seed") { Description = "Seed of the models' init and of the fixed gradient", DefaultValueFactory = _ => 0 };
        var quick = new Option<bool>("--quick") { Description = "One tiny model (smoke test; the figures mean nothing); explicit options still win" };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON instead of a table" };
        foreach (var o in new Option[] { reps, warmup, seed, quick, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            bool isQuick = pr.GetValue(quick);
            var b = isQuick ? AdamWBenchOptions.QuickDefaults : new AdamWBenchOptions();
            bool Given(Option o) => pr.GetResult(o) is { Implicit: false };
            var opts = b with
            {
                Reps = Check.Range("--reps", Given(reps) || !isQuick ? pr.GetValue(reps) : b.Reps, 1, 1000),
                Warmup = Check.Range("--warmup", Given(warmup) || !isQuick ? pr.GetValue(warmup) : b.Warmup, 1, 100),
                Seed = Check.Range("--seed", pr.GetValue(seed), 0, int.MaxValue),
            };
            var report = AdamWBench.Run(opts, msg => Console.Error.WriteLine($"bench adamw: {msg}"));
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
                return 0;
            }
            RenderAdamW(report);
            return 0;
        });
        return cmd;
    }

    private static Command CreateLoad()
    {
        var cmd = new Command("load", "Load a Hugging Face model folder: median load time and peak RSS above the model's own bytes (the loader streams tensors through a fixed buffer).");
        var model = new Option<string>("--model") { Description = "Model folder", Required = true };
        var reps = new Option<int>("--reps") { Description = "Loads, 1..100; medians are reported", DefaultValueFactory = _ => 3 };
        var dtype = new Option<string>("--dtype") { Description = "bf16 | f32 | f16 (default: the checkpoint's torch_dtype)" };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON instead of a table" };
        foreach (var o in new Option[] { model, reps, dtype, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            var rep = LoadBench.Run(new LoadBenchOptions { Model = pr.GetValue(model)!, Reps = pr.GetValue(reps), DType = pr.GetValue(dtype) },
                msg => Console.Error.WriteLine($"bench load: {msg}"));
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(rep, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
                return 0;
            }
            var t = new Table().Border(TableBorder.Rounded).Title(Markup.Escape($"Load {rep.Model} as {rep.DType}, median of {rep.Seconds.Count}")).AddColumns("", "");
            t.AddRow("parameters", rep.Parameters.ToString("N0", CultureInfo.InvariantCulture));
            t.AddRow("model bytes / largest tensor", $"{Bytes(rep.ModelBytes)} / {Bytes(rep.LargestTensorBytes)} (files {Bytes(rep.FileBytes)})");
            t.AddRow("load time, median [[min–max]]", $"{F(rep.SecondsMedian, "0.00")} s [[{F(rep.Seconds.Min(), "0.00")}–{F(rep.Seconds.Max(), "0.00")}]]");
            t.AddRow("peak RSS above pre-load", rep.PeakRssExtraBytes is { } p ? string.Join(", ", p.Select(Bytes)) : "n/a");
            t.AddRow("of which beyond the model (median)", rep.OverheadBytesMedian is { } ov ? $"{Bytes(ov)} = {F(rep.OverheadOverLargestTensor!.Value, "0.00")} × the largest tensor" : "n/a");
            AnsiConsole.Write(t);
            AnsiConsole.MarkupLine(Markup.Escape($"{rep.Date}, {rep.ProcessorCount} CPUs, {rep.Os}, TorchSharp {rep.TorchSharp}"));
            return 0;
        });
        return cmd;
    }

    private static Command CreateHead()
    {
        var cmd = new Command("head", "The LM head and the trainer's loss from hidden states: unfused (full logits [N,|V|], log-softmax, gathers, Top-k reverse KL, entropy, backward) vs the fused loss (row chunks, gradients formed in the forward pass), and the floor (the head's three GEMMs alone): median time, peak memory, ratios, max relative difference.");
        var d = new HeadBenchOptions();
        var q = HeadBenchOptions.QuickDefaults;
        var vocab = new Option<int>("--vocab") { Description = $"Vocabulary size |V|, 2..{MaxVocab} (--quick: {q.Vocab})", DefaultValueFactory = _ => d.Vocab };
        var hidden = new Option<int>("--hidden") { Description = $"Hidden size H, 1..{MaxHidden} (--quick: {q.Hidden})", DefaultValueFactory = _ => d.Hidden };
        var tokens = new Option<int>("--tokens") { Description = $"Tokens N, 1..{MaxTokens} (--quick: {q.Tokens})", DefaultValueFactory = _ => d.Tokens };
        var k = new Option<int>("--k") { Description = $"Top-k size of q, 0..|V| (--quick: {q.K})", DefaultValueFactory = _ => d.K };
        var reps = new Option<int>("--reps") { Description = $"Timed repetitions of each path, 1..1000; medians are reported (--quick: {q.Reps})", DefaultValueFactory = _ => d.Reps };
        var chunk = new Option<int?>("--chunk") { Description = $"Rows (tokens) per chunk of the fused loss, 1..N (default: 2^25 / |V|, at least 1; --quick: {q.ChunkSize})" };
        var seed = new Option<int>("--seed") { Description = "Seed of the synthetic problem", DefaultValueFactory = _ => 0 };
        var quick = new Option<bool>("--quick") { Description = "Tiny problem and 2 reps (smoke test; the figures mean nothing); explicit options still win" };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON (snake_case) instead of a table" };
        foreach (var o in new Option[] { vocab, hidden, tokens, k, reps, chunk, seed, quick, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            bool isQuick = pr.GetValue(quick);
            var b = isQuick ? HeadBenchOptions.QuickDefaults : new HeadBenchOptions();
            bool Given(Option o) => pr.GetResult(o) is { Implicit: false };
            int Pick(Option<int> o, int quickValue) => Given(o) || !isQuick ? pr.GetValue(o) : quickValue;
            int v = Check.Range("--vocab", Pick(vocab, b.Vocab), 2, MaxVocab);
            int n = Check.Range("--tokens", Pick(tokens, b.Tokens), 1, MaxTokens);
            var opts = b with
            {
                Vocab = v,
                Hidden = Check.Range("--hidden", Pick(hidden, b.Hidden), 1, MaxHidden),
                Tokens = n,
                K = Check.Range("--k", Pick(k, Math.Min(b.K, v)), 0, v),
                Reps = Check.Range("--reps", Pick(reps, b.Reps), 1, 1000),
                ChunkSize = pr.GetValue(chunk) is { } c ? Check.Range("--chunk", c, 1, n) : b.ChunkSize is { } qc ? Math.Min(qc, n) : null,
                Seed = Check.Range("--seed", pr.GetValue(seed), 0, int.MaxValue),
            };
            var report = HeadBench.Run(opts, msg => Console.Error.WriteLine($"bench head: {msg}"));
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
                return 0;
            }
            RenderHead(report);
            return 0;
        });
        return cmd;
    }

    private const int MaxHidden = 65536;

    private static void RenderHead(HeadBenchReport rep)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
        var t = new Table().Border(TableBorder.Rounded)
            .Title($"LM head + loss: |V| = {rep.Vocab}, H = {rep.Hidden}, N = {rep.Tokens}, k = {rep.K}, chunk = {rep.ChunkSize}, {rep.DType}, CPU, {rep.TorchThreads} torch threads, median of {rep.Reps} reps{(rep.Quick ? " (QUICK: figures mean nothing)" : "")}")
            .AddColumns("path", "time fwd+bwd (ms), median [[min–max]]", "CPU time (ms), median", "peak extra (beyond ∂h, ∂W)", "peak RSS extra", "tracked fwd");
        string Peak(long? x) => x is { } b ? Bytes(b) : "n/a";
        t.AddRow("naive (full logits)", $"{F(rep.Naive.MedianMs, "0.0")} [[{F(rep.Naive.MinMs, "0.0")}–{F(rep.Naive.MaxMs, "0.0")}]]", F(rep.Naive.MedianCpuMs, "0.0"), Peak(rep.Naive.PeakExtraBytes), Peak(rep.Naive.PeakRssExtraBytes), Bytes(rep.Naive.TrackedForwardBytes));
        t.AddRow("fused loss (row chunks)", $"{F(rep.Fused.MedianMs, "0.0")} [[{F(rep.Fused.MinMs, "0.0")}–{F(rep.Fused.MaxMs, "0.0")}]]", F(rep.Fused.MedianCpuMs, "0.0"), Peak(rep.Fused.PeakExtraBytes), Peak(rep.Fused.PeakRssExtraBytes), Bytes(rep.Fused.TrackedForwardBytes));
        t.AddRow("floor (3 GEMMs)", $"{F(rep.FloorMs, "0.0")} [[{F(rep.FloorTimesMs.Min(), "0.0")}–{F(rep.FloorTimesMs.Max(), "0.0")}]]", F(rep.FloorCpuMs, "0.0"), "", "", "");
        t.AddRow("[bold]naive ÷ fused[/]", $"[bold]{X(rep.Ratios.NaiveOverFusedTime)}[/]", $"[bold]{X(rep.Ratios.NaiveOverFusedCpu)}[/]", $"[bold]{X(rep.Ratios.NaiveOverFusedPeakExtra)}[/]", $"[bold]{X(rep.Ratios.NaiveOverFusedPeakRssExtra)}[/]", "");
        t.AddRow("[bold]fused ÷ floor[/]", $"[bold]{X(rep.Ratios.FusedOverFloorTime)}[/]", $"[bold]{X(rep.Ratios.FusedOverFloorCpu)}[/]", "", "", "");
        AnsiConsole.Write(t);
        string Goal(bool? ok) => ok switch { true => "met", false => "NOT met", null => "n/a" };
        AnsiConsole.MarkupLine(Markup.Escape($"max_rel_diff (outputs and gradients, fused vs naive): {rep.MaxRelDiff:E2}; gradients ∂h + ∂W: {Bytes(rep.GradientBytes)}"));
        AnsiConsole.MarkupLine(Markup.Escape($"goals: fused peak extra ≤ naive / 20: {Goal(rep.Goals.MemoryAtMostOneTwentieth)}; fused time ≤ naive: {Goal(rep.Goals.TimeAtMostNaive)}; fused time ≤ 1.5 × floor: {Goal(rep.Goals.TimeAtMostOneAndAHalfFloor)}"));
        WriteFooter(rep.Date, rep.ProcessorCount, rep.Os, rep.TorchSharp, rep.Definitions, rep.PeakRssAvailable);
    }

    private static void RenderAdamW(AdamWBenchReport rep)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
        var t = new Table().Border(TableBorder.Rounded)
            .Title($"AdamW step: {rep.TorchThreads} torch threads, CPU, median of {rep.Reps} steps after {rep.Warmup} warm-up{(rep.Quick ? " (QUICK: figures mean nothing)" : "")}")
            .AddColumns("model", "parameters", "optimizer", "step (ms), median [[min–max]]", "first-step peak RSS extra", "steady-step peak RSS extra", "max |Δθ|");
        foreach (var row in rep.Rows)
        {
            if (row != rep.Rows[0]) t.AddEmptyRow();
            foreach (var m in new[] { row.Torch, row.Ours })
                t.AddRow(row.Model, row.Parameters.ToString("N0", CultureInfo.InvariantCulture), m.Optimizer,
                    $"{F(m.StepMsMedian, "0.000")} [[{F(m.StepMsMin, "0.000")}–{F(m.StepMsMax, "0.000")}]]",
                    m.FirstStepPeakRssExtraBytes is { } f ? Bytes(f) : "n/a", m.SteadyStepPeakRssExtraBytesMedian is { } s ? Bytes(s) : "n/a",
                    row.MaxParameterDifference.ToString("G3", CultureInfo.InvariantCulture));
            t.AddRow($"[bold]{Markup.Escape(row.Model)}[/]", "", "[bold]torch ÷ ours[/]", $"[bold]{X(row.TimeRatio)}[/]", $"[bold]{X(row.FirstStepMemoryRatio)}[/]", "", "");
        }
        AnsiConsole.Write(t);
        WriteFooter(rep.Date, rep.ProcessorCount, rep.Os, rep.TorchSharp, rep.Definitions, rep.PeakRssAvailable);
    }

    private const int MaxVocab = 1_000_000;
    private const int MaxTokens = 1_000_000;

    private static IReadOnlyList<int> ParseVocab(string s)
    {
        var parts = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new UserError("--vocab must be a comma list of integers in [2, 1000000], got an empty list.");
        return parts.Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)
            ? Check.Range("--vocab", v, 2, MaxVocab)
            : throw new UserError($"--vocab must be a comma list of integers in [2, {MaxVocab}], got '{p}'.")).ToList();
    }

    private static string ParseDevice(string s)
    {
        s = s.Trim().ToLowerInvariant();
        if (s == "cpu") return s;
        if (s == "cuda" || (s.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(s[5..], out var i) && i >= 0))
        {
            if (!torch.cuda.is_available()) throw new UserError($"--device must be cpu here: '{s}' was asked for but CUDA is not available (this build uses the CPU libtorch).");
            return s;
        }
        throw new UserError($"--device must be one of cpu, cuda, cuda:<n>, got '{s}'.");
    }

    private static void Render(KlBenchReport rep)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
        var t = new Table().Border(TableBorder.Rounded)
            .Title($"KL benchmark: N = {rep.Tokens} tokens, k = {rep.K}, {rep.DType}, {rep.Device}, {rep.TorchThreads} torch threads, median of {rep.Reps} reps{(rep.Quick ? " (QUICK: figures mean nothing)" : "")}")
            .AddColumns("|V|", "estimator", "stored numbers / token", "stored inputs", "time fwd+bwd (ms), median [[min–max]]", "tracked fwd", "peak RSS extra", "gradient [[N,V]]", "mean KL");
        foreach (var row in rep.Rows)
        {
            if (row != rep.Rows[0]) t.AddEmptyRow();
            foreach (var m in new[] { row.Exact, row.Topk })
                t.AddRow(row.Vocab.ToString(CultureInfo.InvariantCulture), m.Estimator, m.StoredNumbersPerToken.ToString(CultureInfo.InvariantCulture), Bytes(m.StoredInputBytes),
                    $"{F(m.TimeMsMedian, "0.0")} [[{F(m.TimeMsMin, "0.0")}–{F(m.TimeMsMax, "0.0")}]]", Bytes(m.TrackedForwardBytes),
                    m.PeakRssExtraBytesMedian is { } x ? Bytes(x) : "n/a", Bytes(m.GradientBytes), $"{F(m.MeanKl, "0.0000")} ± {F(m.MeanKlStdErr, "0.0000")}");
            var ra = row.ExactOverTopk;
            t.AddRow($"[bold]{row.Vocab}[/]", "[bold]exact ÷ top-k[/]", F((double)row.Exact.StoredNumbersPerToken / row.Topk.StoredNumbersPerToken, "0.#") + "×",
                $"[bold]{X(ra.StoredInputs)}[/]", $"[bold]{X(ra.Time)}[/]", $"[bold]{X(ra.TrackedForward)}[/]", $"[bold]{X(ra.PeakRssExtra)}[/]", "1×", "");
        }
        AnsiConsole.Write(t);
        WriteFooter(rep.Date, rep.ProcessorCount, rep.Os, rep.TorchSharp, rep.Definitions, rep.PeakRssAvailable);
    }

    /// <summary>The lines under every benchmark table: where it ran, what each figure means.</summary>
    private static void WriteFooter(string date, int cpus, string os, string torchSharp, IReadOnlyDictionary<string, string> definitions, bool peakRssAvailable)
    {
        AnsiConsole.MarkupLine($"[grey]{Markup.Escape($"{date}, {cpus} logical CPUs, {os}, TorchSharp {torchSharp}. MiB = 2^20 bytes, GiB = 2^30 bytes.")}[/]");
        foreach (var (key, text) in definitions)
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape($"{key}: {text}")}[/]");
        if (!peakRssAvailable)
            AnsiConsole.MarkupLine("[yellow]peak RSS is not available here (needs CPU on Linux with /proc/self/clear_refs).[/]");
    }

    private static string F(double v, string fmt) => double.IsNaN(v) ? "n/a" : v.ToString(fmt, CultureInfo.InvariantCulture);

    private static string X(double? r) => r is { } v ? (v >= 10 ? v.ToString("0", CultureInfo.InvariantCulture) : v.ToString("0.00", CultureInfo.InvariantCulture)) + "×" : "n/a";

    private static string Bytes(long b) => Math.Abs(b) switch
    {
        >= 1L << 30 => $"{(b / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture)} GiB",
        >= 1L << 20 => $"{(b / (double)(1L << 20)).ToString("0.0", CultureInfo.InvariantCulture)} MiB",
        _ => $"{(b / 1024.0).ToString("0.0", CultureInfo.InvariantCulture)} KiB",
    };
}

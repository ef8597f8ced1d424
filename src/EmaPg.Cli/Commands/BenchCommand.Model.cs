using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Bench;
using EmaPg.Common;
using EmaPg.Model.HuggingFace;
using Spectre.Console;

namespace EmaPg.Cli.Commands;

public static partial class BenchCommand
{
    private static readonly JsonSerializerOptions SnakeCase = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private static Command CreateTrainStep()
    {
        var cmd = new Command("train-step", "One EMA-PG update as the trainer does it (policy forward/backward with the clip-higher loss and β·Top-k reverse KL, AdamW step, EMA anchor update) on a randomly initialised model with a real model's config: tokens/s, peak RSS and the static state, with and without the fused head and activation checkpointing.");
        var d = new TrainStepBenchOptions();
        var like = new Option<string>("--like") { Description = $"Config of a real model: {string.Join(", ", HfConfig.KnownNames)}", DefaultValueFactory = _ => d.Like };
        var tokens = new Option<int>("--tokens") { Description = "Tokens per update (rows × --seq-len), a multiple of --seq-len", DefaultValueFactory = _ => d.Tokens };
        var seqLen = new Option<int>("--seq-len") { Description = "Positions per row (prompt + response)", DefaultValueFactory = _ => d.SeqLen };
        var promptLength = new Option<int>("--prompt-length") { Description = "Prompt positions per row (the response positions carry the loss)", DefaultValueFactory = _ => d.PromptLength };
        var reps = new Option<int>("--reps") { Description = "Timed updates per variant, 1..100; medians are reported", DefaultValueFactory = _ => d.Reps };
        var warmup = new Option<int>("--warmup") { Description = "Untimed updates before the first variant, 0..100 (with 0 the first timed update also first-touches the gradients)", DefaultValueFactory = _ => d.Warmup };
        var variants = new Option<string>("--variants") { Description = "Comma list of fused+ckpt, unfused+ckpt, fused, unfused (run in that order; fused+ckpt is the default configuration and --json's figures)", DefaultValueFactory = _ => string.Join(",", TrainStepBenchOptions.AllVariants.Select(TrainStepBenchOptions.VariantName)) };
        var seed = new Option<int>("--seed") { Description = "Seed of the model init and the synthetic rollouts", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print {\"tokens_per_second\",\"peak_rss_bytes\",\"static_bytes\"} of the default configuration, then the full report" };
        foreach (var o in new Option[] { like, tokens, seqLen, promptLength, reps, warmup, variants, seed, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            var opts = new TrainStepBenchOptions
            {
                Like = pr.GetValue(like)!,
                Tokens = pr.GetValue(tokens),
                SeqLen = pr.GetValue(seqLen),
                PromptLength = pr.GetValue(promptLength),
                Reps = pr.GetValue(reps),
                Warmup = pr.GetValue(warmup),
                Variants = ParseVariants(pr.GetValue(variants)!),
                Seed = Check.Range("--seed", pr.GetValue(seed), 0, int.MaxValue),
            };
            var report = TrainStepBench.Run(opts, msg => Console.Error.WriteLine($"bench train-step: {msg}"));
            if (pr.GetValue(json))
            {
                var def = report.Variants.FirstOrDefault(v => v.FusedHead && v.ActivationCheckpointing);
                var o = new JsonObject
                {
                    ["tokens_per_second"] = def?.TokensPerSecond,
                    ["peak_rss_bytes"] = def?.PeakRssBytes,
                    ["static_bytes"] = report.StaticBytes,
                    ["report"] = JsonSerializer.SerializeToNode(report, SnakeCase),
                };
                Console.WriteLine(o.ToJsonString(SnakeCase));
                return 0;
            }
            RenderTrainStep(report);
            return 0;
        });
        return cmd;
    }

    private static IReadOnlyList<(bool Fused, bool Checkpointing)> ParseVariants(string s)
    {
        var all = TrainStepBenchOptions.AllVariants.ToDictionary(TrainStepBenchOptions.VariantName);
        var names = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var n in names)
            if (!all.ContainsKey(n)) throw new UserError($"--variants must be a comma list of {string.Join(", ", all.Keys)}, got '{n}'.");
        if (names.Length == 0) throw new UserError($"--variants must name at least one of {string.Join(", ", all.Keys)}.");
        return TrainStepBenchOptions.AllVariants.Where(v => names.Contains(TrainStepBenchOptions.VariantName(v))).ToList();
    }

    private static void RenderTrainStep(TrainStepBenchReport rep)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
        var t = new Table().Border(TableBorder.Rounded)
            .Title($"EMA-PG update: {rep.Like} ({rep.Parameters:N0} parameters, float32, random init), {rep.Tokens} tokens = {rep.Rows} rows × {rep.SeqLen} (prompt {rep.PromptLength}), {rep.Estimator} k = {rep.K}, CPU, {rep.TorchThreads} torch threads, median of {rep.Reps} after {rep.Warmup} warm-up")
            .AddColumns("variant", "update (s), median", "tokens/s", "peak RSS", "peak ÷ static", "KL (the policy moves between variants)");
        foreach (var v in rep.Variants)
            t.AddRow(v.Name, F(v.SecondsMedian, "0.0"), F(v.TokensPerSecond, "0.0"), v.PeakRssBytes is { } p ? Bytes(p) : "n/a", X(v.PeakOverStatic), F(v.Loss, "0.000000"));
        var def = rep.Variants.FirstOrDefault(v => v.FusedHead && v.ActivationCheckpointing);
        if (def is not null)
            foreach (var v in rep.Variants.Where(v => v != def))
                t.AddRow($"[bold]{v.Name} ÷ fused+ckpt[/]", $"[bold]{X(BenchStats.Ratio(v.SecondsMedian, def.SecondsMedian))}[/]", "", $"[bold]{X(BenchStats.Ratio(v.PeakRssBytes, def.PeakRssBytes))}[/]", "", "");
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine(Markup.Escape($"static state (policy, gradients, AdamW moments and scratch, EMA anchor): {Bytes(rep.StaticBytes)}; RSS before the updates: {Bytes(rep.RssBeforeBytes)}"));
        if (def?.PeakOverStatic is { } r)
            AnsiConsole.MarkupLine(Markup.Escape($"goal: peak ≤ 1.5 × static state (fused+ckpt): {(r <= 1.5 ? "met" : "NOT met")} ({r:0.00}×)"));
        AnsiConsole.MarkupLine($"[grey]{Markup.Escape($"{rep.Date}, {rep.ProcessorCount} logical CPUs, {rep.Os}, TorchSharp {rep.TorchSharp}. Peak RSS: the process's VmHWM, reset before each variant; the first variant's includes the first update, which allocates the gradients.")}[/]");
    }

    private static Command CreateSample()
    {
        var cmd = new Command("sample", "KV-cached batched sampling (the library's Sampler, full distribution, temperature 1) of a randomly initialised model with a real model's config: tokens/s, and the same model's GEMMs per decoding step (linear layers and LM head for the same batch, timed alone in the same run) as the floor, with the ratio.");
        var d = new SampleBenchOptions();
        var like = new Option<string>("--like") { Description = $"Config of a real model: {string.Join(", ", HfConfig.KnownNames)}", DefaultValueFactory = _ => d.Like };
        var batch = new Option<int>("--batch") { Description = "Rows decoded together, 1..4096", DefaultValueFactory = _ => d.Batch };
        var newTokens = new Option<int>("--new-tokens") { Description = "Tokens generated per row, 1..4096 (no stop token: every row runs to the end)", DefaultValueFactory = _ => d.NewTokens };
        var promptLength = new Option<int>("--prompt-length") { Description = "Random prompt tokens per row, 1..4096", DefaultValueFactory = _ => d.PromptLength };
        var topK = new Option<int>("--return-top-k") { Description = "Top-k indices returned per token (the trainer's q), 0..|V|", DefaultValueFactory = _ => d.ReturnTopK };
        var reps = new Option<int>("--reps") { Description = "Timed generations, 1..100; medians are reported", DefaultValueFactory = _ => d.Reps };
        var seed = new Option<int>("--seed") { Description = "Seed of the model init, prompts and sampling", DefaultValueFactory = _ => 0 };
        var set = new Option<string[]>("--set") { Description = "config.json override key=value of the --like config, repeatable (the word-problems policy: --like qwen3-0.6b --set hidden_size=64 --set intermediate_size=256 --set num_hidden_layers=2 --set num_attention_heads=4 --set num_key_value_heads=2 --set head_dim=16)", AllowMultipleArgumentsPerToken = false };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON (snake_case) instead of a table" };
        foreach (var o in new Option[] { like, batch, newTokens, promptLength, topK, reps, seed, set, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            var opts = new SampleBenchOptions
            {
                Like = pr.GetValue(like)!,
                Batch = pr.GetValue(batch),
                NewTokens = pr.GetValue(newTokens),
                PromptLength = pr.GetValue(promptLength),
                ReturnTopK = pr.GetValue(topK),
                Reps = pr.GetValue(reps),
                Seed = Check.Range("--seed", pr.GetValue(seed), 0, int.MaxValue),
                Set = pr.GetValue(set) ?? [],
            };
            var report = SampleBench.Run(opts, msg => Console.Error.WriteLine($"bench sample: {msg}"));
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(report, SnakeCase));
                return 0;
            }
            if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
            var t = new Table().Border(TableBorder.Rounded)
                .Title($"KV-cached sampling: {report.Like} ({report.Parameters:N0} parameters, float32, random init), batch {report.Batch}, prompt {report.PromptLength}, {report.NewTokens} new tokens, top-{report.ReturnTopK} returned, CPU, {report.TorchThreads} torch threads, median of {report.Reps}")
                .AddColumns("", "time", "tokens/s");
            t.AddRow("Sampler.Generate", $"{F(report.GenerateSecondsMedian, "0.00")} s [[{F(report.GenerateSeconds.Min(), "0.00")}–{F(report.GenerateSeconds.Max(), "0.00")}]]", F(report.TokensPerSecond, "0.0"));
            t.AddRow("floor: GEMMs (prefill + steps)", $"{F(report.FloorSeconds, "0.00")} s (step {F(report.StepGemmMsMedian, "0.0")} ms, prefill {F(report.PrefillGemmMsMedian, "0.0")} ms)", F(report.FloorTokensPerSecond, "0.0"));
            t.AddRow("[bold]generate ÷ floor[/]", $"[bold]{X(report.GenerateOverFloor)}[/]", "");
            AnsiConsole.Write(t);
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape($"{report.Date}, {report.ProcessorCount} logical CPUs, {report.Os}, TorchSharp {report.TorchSharp}. Floor: every linear layer's x·Wᵀ and the LM head's for the same rows, timed alone; attention over the cache, norms, RoPE, softmax, sampling and top-k are what generation adds.")}[/]");
            return 0;
        });
        return cmd;
    }
}

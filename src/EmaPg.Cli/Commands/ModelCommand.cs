using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;
using EmaPg.Model.HuggingFace;
using EmaPg.Sampling;
using Spectre.Console;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg model init|info|score|generate`: Hugging Face model folders (Qwen2, Qwen3, Llama).</summary>
public static class ModelCommand
{
    public static Command Create()
    {
        var cmd = new Command("model", "Hugging Face model folders (config.json + safetensors + tokenizer files): create, inspect, score, generate.");
        cmd.Subcommands.Add(Init());
        cmd.Subcommands.Add(Info());
        cmd.Subcommands.Add(Score());
        cmd.Subcommands.Add(Generate());
        return cmd;
    }

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static Command Init()
    {
        var cmd = new Command("init", "Write a randomly initialised checkpoint with the exact config of a real model (or of a config.json), so the whole path runs without downloading weights.");
        var like = new Option<string>("--like") { Description = $"Config of a real model: {string.Join(", ", HfConfig.KnownNames)}" };
        var config = new Option<string>("--config") { Description = "A config.json to copy instead of --like" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "Folder with tokenizer.json (+ tokenizer_config.json …), copied into the checkpoint", Required = true };
        var output = new Option<string>("--out") { Description = "Folder to create (must not hold a config.json)", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "bf16 | f32 | f16 (default: the config's torch_dtype)" };
        var seed = new Option<long>("--seed") { Description = "Seed of the normal(0, initializer_range) init", DefaultValueFactory = _ => 0 };
        var set = new Option<string[]>("--set") { Description = "config.json override key=value (JSON value, else string), repeatable: --set num_hidden_layers=2 --set hidden_size=64", AllowMultipleArgumentsPerToken = false };
        foreach (var o in new Option[] { like, config, tokenizer, output, dtype, seed, set }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            var info = HfCheckpoint.Init(new ModelInitOptions
            {
                Like = pr.GetValue(like),
                ConfigFile = pr.GetValue(config),
                TokenizerDir = pr.GetValue(tokenizer)!,
                OutDir = pr.GetValue(output)!,
                DType = pr.GetValue(dtype),
                Seed = pr.GetValue(seed),
                Set = pr.GetValue(set) ?? [],
            });
            RenderInfo(info);
            return 0;
        });
        return cmd;
    }

    private static Command Info()
    {
        var cmd = new Command("info", "Architecture, parameter count, dtype, vocabulary and special tokens of a model folder (reads headers only).");
        var model = new Option<string>("--model") { Description = "Model folder", Required = true };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        cmd.Options.Add(model);
        cmd.Options.Add(json);
        cmd.SetAction(pr =>
        {
            var info = HfModelInfo.Read(pr.GetValue(model)!);
            if (pr.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(info, Json));
            else RenderInfo(info);
            return 0;
        });
        return cmd;
    }

    private static Command Score()
    {
        var cmd = new Command("score", "Next-token top-K log-probs (float32) at every position of a token sequence.");
        var model = new Option<string>("--model") { Description = "Model folder", Required = true };
        var ids = new Option<string>("--ids") { Description = "Comma-separated token ids, e.g. 1,2,3" };
        var text = new Option<string>("--text") { Description = "Text to tokenize with the folder's tokenizer instead of --ids" };
        var chat = new Option<bool>("--chat") { Description = "With --text: render it as a user turn with the folder's chat template and the generation prompt" };
        var top = new Option<int>("--top") { Description = "How many tokens per position, 1..vocab", DefaultValueFactory = _ => 20 };
        var json = new Option<bool>("--json") { Description = "Print {\"ids\":[…],\"positions\":[{\"top_ids\":[…],\"top_logprobs\":[…]},…]}" };
        foreach (var o in new Option[] { model, ids, text, chat, top, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            var idList = pr.GetValue(ids) is { } s ? ListParse.Ints("--ids", s, 0, int.MaxValue) : null;
            using var input = new Tokenization.PromptInput(pr.GetValue(model)!);
            var tokens = input.ToIds(idList, pr.GetValue(text), pr.GetValue(chat), "--text");
            var positions = ModelQueries.TopLogProbs(pr.GetValue(model)!, tokens, pr.GetValue(top));
            if (pr.GetValue(json))
            {
                var o = new JsonObject
                {
                    ["ids"] = new JsonArray(tokens.Select(t => (JsonNode)t).ToArray()),
                    ["positions"] = new JsonArray(positions.Select(p => (JsonNode)new JsonObject
                    {
                        ["top_ids"] = new JsonArray(p.TopIds.Select(t => (JsonNode)t).ToArray()),
                        ["top_logprobs"] = new JsonArray(p.TopLogprobs.Select(v => (JsonNode)v).ToArray()),
                    }).ToArray()),
                };
                Console.WriteLine(o.ToJsonString());
                return 0;
            }
            var t = new Table().Border(TableBorder.Rounded).AddColumns("position", "id", "next: top ids (log-prob)");
            for (int i = 0; i < tokens.Length; i++)
                t.AddRow(i.ToString(CultureInfo.InvariantCulture), tokens[i].ToString(CultureInfo.InvariantCulture),
                    string.Join("  ", positions[i].TopIds.Zip(positions[i].TopLogprobs).Take(5).Select(x => $"{x.First} ({x.Second.ToString("0.000", CultureInfo.InvariantCulture)})")));
            AnsiConsole.Write(t);
            return 0;
        });
        return cmd;
    }

    private static Command Generate()
    {
        var cmd = new Command("generate", "Continue a token sequence (float32; stops at the folder's eos ids).");
        var model = new Option<string>("--model") { Description = "Model folder", Required = true };
        var ids = new Option<string>("--ids") { Description = "Comma-separated prompt token ids" };
        var prompt = new Option<string>("--prompt") { Description = "Prompt text to tokenize with the folder's tokenizer instead of --ids" };
        var chat = new Option<bool>("--chat") { Description = "With --prompt: render it as a user turn with the folder's chat template and the generation prompt" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "At most this many new tokens, ≥ 1", DefaultValueFactory = _ => 32 };
        var temperature = new Option<double>("--temperature") { Description = "Softmax temperature, ≥ 0; 0 = greedy", DefaultValueFactory = _ => 0.0 };
        var seed = new Option<long>("--seed") { Description = "Seed of the sampling generator", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print {\"new_ids\":[…],\"text\":\"…\"} (text: the new ids decoded by the folder's tokenizer, special tokens skipped)" };
        foreach (var o in new Option[] { model, ids, prompt, chat, maxNew, temperature, seed, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            var dir = pr.GetValue(model)!;
            var idList = pr.GetValue(ids) is { } s ? ListParse.Ints("--ids", s, 0, int.MaxValue) : null;
            using var input = new Tokenization.PromptInput(dir);
            var promptIds = input.ToIds(idList, pr.GetValue(prompt), pr.GetValue(chat), "--prompt");
            var newIds = ModelQueries.Generate(dir, promptIds, pr.GetValue(maxNew), pr.GetValue(temperature), pr.GetValue(seed));
            var decoded = input.Decode(newIds);
            if (pr.GetValue(json))
            {
                var o = new JsonObject { ["new_ids"] = new JsonArray(newIds.Select(t => (JsonNode)t).ToArray()) };
                if (decoded is not null) o["text"] = decoded;
                Console.WriteLine(o.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            }
            else
                Console.WriteLine(decoded ?? string.Join(",", newIds));
            return 0;
        });
        return cmd;
    }

    private static void RenderInfo(HfModelInfo i)
    {
        var inv = CultureInfo.InvariantCulture;
        var t = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(i.Directory)).AddColumns("", "");
        t.AddRow("architecture", $"{i.Architecture} (model_type {i.ModelType})");
        t.AddRow("parameters", i.Parameters.ToString("N0", inv));
        t.AddRow("dtype", $"{i.DType}, {i.Bytes.ToString("N0", inv)} bytes in {string.Join(", ", i.Files)}");
        t.AddRow("vocabulary", $"vocab_size {i.VocabSize}" + (i.TokenizerVocabSize is { } tv ? $", tokenizer {tv} ids" : ", no tokenizer.json"));
        t.AddRow("shape", $"{i.NumHiddenLayers} layers, hidden {i.HiddenSize}, MLP {i.IntermediateSize}, heads {i.NumAttentionHeads} (kv {i.NumKeyValueHeads}) × {i.HeadDim}");
        t.AddRow("positions", $"max {i.MaxPositionEmbeddings}, rope_theta {i.RopeTheta.ToString(inv)}, rope_scaling {i.RopeScaling}");
        t.AddRow("embeddings", i.TieWordEmbeddings ? "tied" : "untied");
        foreach (var s in i.SpecialTokens)
            t.AddRow($"{s.Role} token", Markup.Escape($"ids [{string.Join(", ", s.Ids)}]" + (s.Text is null ? "" : $", tokenizer_config '{s.Text}' = {s.TextId?.ToString(inv) ?? "not in vocabulary"}")));
        AnsiConsole.Write(t);
    }
}

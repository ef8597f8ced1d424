using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using EmaPg.Common;
using EmaPg.Tokenization;

namespace EmaPg.Cli.Commands;

/// <summary>
/// `emapg tokenize --model DIR (--text T | --input FILE.jsonl) [--json]`: ids of a text, or of each JSONL line
/// ({"text"} → {"ids"}; {"messages", "add_generation_prompt", "enable_thinking"} → {"text", "ids"}).
/// </summary>
public static class TokenizeCommand
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var cmd = new Command("tokenize", "Token ids of a text or of each JSONL line with a model's Hugging Face tokenizer (tokenizer.json, HF's own Rust library) and chat template. Prints the timing (tokens/s) to stderr.");
        var model = new Option<string>("--model") { Description = "Model directory with tokenizer.json and tokenizer_config.json (+ generation_config.json, chat_template.jinja if present)", Required = true };
        var text = new Option<string?>("--text") { Description = "One text to tokenize" };
        var input = new Option<string?>("--input") { Description = "JSONL file: each line {\"text\": T} or {\"messages\": [{\"role\", \"content\"}…], \"add_generation_prompt\": b, \"enable_thinking\": b}" };
        var json = new Option<bool>("--json") { Description = "One JSON object per input: {\"ids\": […]} for texts, {\"text\": rendered, \"ids\": […]} for chats" };
        var special = new Option<bool>("--add-special-tokens") { Description = "Let the post-processor add its special tokens (e.g. a BOS) to texts; chats never get them (their template writes them)" };
        foreach (var o in new Option[] { model, text, input, json, special }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            string? t = pr.GetValue(text), file = pr.GetValue(input);
            if ((t is null) == (file is null)) throw new UserError("give exactly one of --text T or --input FILE.jsonl.");
            var requests = t is not null ? [new TokenizeRequest.Text(t)] : TokenizeRequests.ReadJsonl(file!);
            var clock = Stopwatch.StartNew();
            using var tokenizer = HfTokenizer.Load(pr.GetValue(model)!);
            double loadSeconds = clock.Elapsed.TotalSeconds;
            bool asJson = pr.GetValue(json), addSpecial = pr.GetValue(special);
            long inputs = 0, tokens = 0;
            var work = Stopwatch.StartNew();
            foreach (var r in requests)
            {
                var result = TokenizeRequests.Run(tokenizer, r, addSpecial);
                inputs++;
                tokens += result.Ids.Length;
                Render(result, asJson);
            }
            double s = work.Elapsed.TotalSeconds;
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"tokenize: {inputs} input(s), {tokens} tokens in {s:0.000} s ({(s > 0 ? tokens / s : 0):0} tokens/s, output included); tokenizer loaded in {loadSeconds:0.00} s"));
            return 0;
        });
        return cmd;
    }

    private static void Render(TokenizeResult r, bool asJson)
    {
        if (asJson)
        {
            Console.WriteLine(r.Text is null
                ? JsonSerializer.Serialize(new { ids = r.Ids }, Json)
                : JsonSerializer.Serialize(new { text = r.Text, ids = r.Ids }, Json));
            return;
        }
        if (r.Text is not null) Console.WriteLine(r.Text);
        Console.WriteLine(string.Join(' ', r.Ids));
    }
}

using System.CommandLine;
using System.Globalization;
using EmaPg.Common;
using EmaPg.Training;
using Spectre.Console;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg sft --model DIR --data FILE --out DIR`: supervised fine-tuning on a dataset's reference responses.</summary>
public static class SftCommand
{
    public static Command Create()
    {
        var cmd = new Command("sft", "Supervised fine-tuning (the cold start before RL) of a Hugging Face model folder on a dataset's reference responses: a 'solution' or 'response' field, or a trailing assistant message. Loss on response tokens only; the result is a new model folder.");
        var modelDir = new Option<string>("--model") { Description = "The Hugging Face model folder to fine-tune", Required = true };
        var data = new Option<string>("--data") { Description = "Training rows, JSONL or Parquet, with prompts and reference responses", Required = true };
        var output = new Option<string>("--out") { Description = "The new model folder (must not hold a model)", Required = true };
        foreach (var o in new Option[] { modelDir, data, output }) cmd.Options.Add(o);
        var keys = ConfigOptions.Add(cmd, ["sft_steps", "sft_batch", "sft_learning_rate", "seed", "solution_field", "prompt_field", "instruction_suffix", "no_chat_template", "max_prompt_length", "over_length", "device", "threads"]);
        cmd.SetAction(pr =>
        {
            var outDir = Check.DirectoryPath(pr.GetValue(output), "--out");
            var c = new TrainConfig { Task = "dataset" };
            c = ConfigSchema.Find("model")!.Set(c, pr.GetValue(modelDir)!);
            var file = pr.GetValue(data)!;
            c = ConfigSchema.Find("eval_data")!.Set(ConfigSchema.Find("data")!.Set(c, file), file);
            c = keys.Apply(pr, c);
            var report = ModelJobs.FineTune(c, outDir, s => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(s)}[/]"));
            var inv = CultureInfo.InvariantCulture;
            AnsiConsole.MarkupLine($"sft: {report.Steps} steps in {report.Seconds.ToString("F1", inv)} s, final loss {report.FinalLoss.ToString("F4", inv)}, {report.Parameters:N0} parameters → [cyan]{Markup.Escape(report.OutDir)}[/]");
            return 0;
        });
        return cmd;
    }
}

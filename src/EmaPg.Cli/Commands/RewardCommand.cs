using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EmaPg.Common;
using EmaPg.Rewards;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg reward NAME --input FILE.jsonl`: scores hand-written cases with a registered reward.</summary>
public static class RewardCommand
{
    public static Command Create()
    {
        var names = string.Join(", ", RewardRegistry.All.Select(r => r.Name));
        var cmd = new Command("reward", $"Score {{\"response\", \"ground_truth\" | \"golden_answers\"}} JSON lines with a reward ({names}); prints {{\"score\": …}} per line.");
        var name = new Argument<string>("NAME") { Description = $"Reward name: {names}" };
        var input = new Option<string>("--input") { Description = "JSONL file, one {\"response\": …, \"ground_truth\": …} per line", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object with every score and the failure counts instead of one line per case" };
        var command = new Option<string?>("--command") { Description = "For 'external': the command to run (reads JSON lines on stdin, writes scores on stdout)" };
        var timeout = new Option<double>("--timeout") { Description = "Seconds one reward call may take, > 0 (longer: scores 0, counted)", DefaultValueFactory = _ => 10.0 };
        cmd.Arguments.Add(name);
        foreach (var o in new Option[] { input, json, command, timeout }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            double seconds = Check.Range("--timeout", pr.GetValue(timeout), 0, 3600, minInclusive: false);
            var result = RewardCheck.Run(pr.GetValue(name)!, pr.GetValue(input)!, new RewardOptions { Command = pr.GetValue(command), Timeout = TimeSpan.FromSeconds(seconds) });
            var r = result.Report;
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    reward = r.Reward, scores = result.Scores, mean = result.Scores.Average(),
                    calls = r.Calls, exceptions = r.Exceptions, timeouts = r.Timeouts, non_numbers = r.NonNumbers,
                }));
                return 0;
            }
            foreach (var s in result.Scores) Console.WriteLine($"{{\"score\":{s.ToString("R", CultureInfo.InvariantCulture)}}}");
            Console.Error.WriteLine(r.ToString());
            return 0;
        });
        return cmd;
    }
}

using System.CommandLine;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg study …`: the paper's analytical studies, one subcommand each.</summary>
public static class StudyCommand
{
    public static Command Create()
    {
        var cmd = new Command("study", "Reproduce the paper's analytical studies: the Top-k bias–variance tradeoff (App. G, Fig. 4) and EMA-anchor stability (§4, App. C).");
        cmd.Subcommands.Add(StudyTopkVarianceCommand.Create());
        cmd.Subcommands.Add(StudyEmaStabilityCommand.Create());
        return cmd;
    }
}

using System.CommandLine;

namespace EmaPg.Cli.Commands;

/// <summary>Every verb of the CLI; each lives in its own file and is listed here once.</summary>
public static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return TrainCommand.Create();
        yield return EvalCommand.Create();
        yield return SftCommand.Create();
        yield return CompareCommand.Create();
        yield return PlotCommand.Create();
        yield return AuditCommand.Create();
        yield return BenchCommand.Create();
        yield return StudyCommand.Create();
        yield return TokenizeCommand.Create();
        yield return ModelCommand.Create();
        yield return ServeCommand.Create();
        yield return RewardCommand.Create();
        yield return IndexCommand.Create();
        yield return SearchCommand.Create();
    }
}

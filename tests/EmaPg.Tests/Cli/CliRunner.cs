namespace EmaPg.Tests.Cli;

/// <summary>Runs the CLI in-process and captures stdout/stderr. Tests using it share a non-parallel collection.</summary>
internal static class CliRunner
{
    private static readonly object Gate = new();

    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        lock (Gate)
        {
            var (o, e) = (Console.Out, Console.Error);
            var so = new StringWriter();
            var se = new StringWriter();
            Console.SetOut(so);
            Console.SetError(se);
            try { return (EmaPg.Cli.Program.Main(args), so.ToString(), se.ToString()); }
            finally { Console.SetOut(o); Console.SetError(e); }
        }
    }
}

[CollectionDefinition("console", DisableParallelization = true)]
public class ConsoleCollection;

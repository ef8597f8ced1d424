using System.CommandLine;
using EmaPg.Cli.Commands;
using EmaPg.Common;

namespace EmaPg.Cli;

public static class Program
{
    /// <summary>Exit codes: 0 success, 2 a user error (bad option, damaged file, diverged run), 3 an I/O failure, 70 an internal error.</summary>
    public const int UserErrorExit = 2, IoErrorExit = 3, InternalErrorExit = 70;

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("EmaPg: KL-regularised RL for language models (EMA anchor + Top-k KL) on TorchSharp.");
        foreach (var c in CommandCatalog.All()) root.Subcommands.Add(c);
        return root;
    }

    public static int Main(string[] args)
    {
        try
        {
            NativeHeap.Configure(Environment.GetEnvironmentVariable(NativeHeap.Variable));
            NativeHeap.RequestHugePages();
            var parse = BuildRoot().Parse(args);
            if (parse.Errors.Count > 0 && !args.Contains("--help") && !args.Contains("-h"))
            {
                // One line, like every other error; --help shows the options.
                var verbs = new List<string>();
                for (var r = parse.CommandResult; r.Parent is System.CommandLine.Parsing.CommandResult parent; r = parent) verbs.Insert(0, r.Command.Name);
                Console.Error.WriteLine($"error: {parse.Errors[0].Message} (see 'emapg {string.Join(" ", verbs.Append("--help"))}')");
                return UserErrorExit;
            }
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            return Report(e);
        }
    }

    /// <summary>
    /// The one top-level handler: a user error or an I/O failure (read-only directory, full disk, missing path) is one line
    /// on stderr; anything else is a bug, reported in three lines with the full trace written to a file, never dumped raw.
    /// </summary>
    public static int Report(Exception e)
    {
        var inner = Unwrap(e);
        switch (inner)
        {
            case UserError u:
                Console.Error.WriteLine($"error: {u.Message}");
                return UserErrorExit;
            case IOException or UnauthorizedAccessException:
                Console.Error.WriteLine($"error: {OneLine(inner.Message)}");
                return IoErrorExit;
            default:
                string where = WriteCrashReport(e);
                Console.Error.WriteLine($"internal error: {inner.GetType().Name}: {OneLine(inner.Message)}");
                Console.Error.WriteLine($"This is a bug in EmaPg, not in your input. The full report is in {where}; please attach it to an issue.");
                return InternalErrorExit;
        }
    }

    private static Exception Unwrap(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException && e.InnerException is not null) e = e.InnerException!;
        return e;
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();

    private static string WriteCrashReport(Exception e)
    {
        try
        {
            var path = Path.Combine(Path.GetTempPath(), $"emapg-crash-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.txt");
            File.WriteAllText(path, $"emapg {string.Join(' ', Environment.GetCommandLineArgs().Skip(1))}\n{DateTime.UtcNow:O}\n\n{e}\n");
            return path;
        }
        catch (Exception)
        {
            return "(no report: the temporary directory is not writable)";
        }
    }
}

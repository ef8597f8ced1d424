using System.CommandLine;
using EmaPg.Cli.Commands;
using EmaPg.Common;

namespace EmaPg.Cli;

public static class Program
{
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
            var parse = BuildRoot().Parse(args);
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (UserError e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}

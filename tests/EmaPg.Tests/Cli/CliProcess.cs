using System.Diagnostics;

namespace EmaPg.Tests.Cli;

/// <summary>Runs the CLI (copied next to the tests) in its own process, so its console output and Spectre profile are its own.</summary>
internal static class CliProcess
{
    public static (int Rc, string Stdout, string Stderr) Run(params string[] args)
    {
        var dll = typeof(EmaPg.Cli.Program).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }
}

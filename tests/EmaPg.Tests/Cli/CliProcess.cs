using System.Diagnostics;

namespace EmaPg.Tests.Cli;

/// <summary>Runs the CLI (copied next to the tests) in its own process, so its console output and Spectre profile are its own.</summary>
internal static class CliProcess
{
    public static (int Rc, string Stdout, string Stderr) Run(params string[] args) => RunIn(null, TimeSpan.FromMinutes(5), args);

    /// <summary>Runs in <paramref name="workingDirectory"/> (relative paths such as runs/.cache land there); killed and failed after <paramref name="timeout"/>.</summary>
    public static (int Rc, string Stdout, string Stderr) RunIn(string? workingDirectory, TimeSpan timeout, params string[] args)
    {
        using var p = Start(workingDirectory, args);
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"emapg {string.Join(' ', args)} ran longer than {timeout}");
        }
        p.WaitForExit();
        return (p.ExitCode, output.Result, err.Result);
    }

    public static Process Start(string? workingDirectory, params string[] args)
    {
        var dll = typeof(EmaPg.Cli.Program).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null) psi.WorkingDirectory = workingDirectory;
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }
}

using System.Globalization;
using EmaPg.Tests.Training;
using EmaPg.Training;

namespace EmaPg.Tests.Cli;

/// <summary>
/// The hostile-user commands of the run-safety issue, each in its own CLI process: a clear one-line error or a
/// working run, never a stack trace, never a file outside the run directory touched, nothing in it lost.
/// </summary>
public class RunSafetyCliTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("emapg-safety-cli-").FullName;
    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>Settings that make a whole run take a second or two; <paramref name="overrides"/> (option, value) replace or extend them.</summary>
    internal static string[] TinyWith(params string[] overrides)
    {
        var d = new Dictionary<string, string>();
        for (int i = 0; i + 1 < Tiny.Length; i += 2) d[Tiny[i]] = Tiny[i + 1];
        for (int i = 0; i + 1 < overrides.Length; i += 2) d[overrides[i]] = overrides[i + 1];
        return [.. d.SelectMany(kv => new[] { kv.Key, kv.Value })];
    }

    internal static readonly string[] Tiny =
    [
        "--iterations", "2", "--sft-steps", "1", "--sft-batch", "4", "--eval-problems", "2", "--eval-samples", "1", "--pass-k", "1",
        "--prompts-per-iteration", "2", "--group-size", "2", "--hidden-size", "16", "--intermediate-size", "16", "--num-layers", "1",
        "--num-heads", "2", "--num-kv-heads", "1", "--kl-topk", "4", "--checkpoint-every", "1", "--stability-monitor", "false", "--threads", "1",
    ];

    internal static (int Rc, string Out, string Err) Emapg(string cwd, params string[] args) => CliProcess.RunIn(cwd, TimeSpan.FromMinutes(2), args);

    /// <summary>No trace, no internal error; a failure is exit 2 or 3 with one 'error:' line.</summary>
    internal static void AssertClean((int Rc, string Out, string Err) r, string what)
    {
        string all = r.Out + r.Err;
        Assert.False(all.Contains("   at ") || all.Contains("Unhandled exception") || all.Contains("internal error"), $"{what}: {all}");
        if (r.Rc != 0)
        {
            Assert.True(r.Rc is 2 or 3, $"{what}: exit {r.Rc}: {all}");
            Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error: "));
        }
    }

    [Fact]
    public void OutOntoAForeignDirectoryIsRefusedAndLeavesItUntouched()
    {
        var git = Path.Combine(_root, "clone", ".git");
        Directory.CreateDirectory(git);
        File.WriteAllText(Path.Combine(git, "config"), "[core]\n\trepositoryformatversion = 0\n");
        File.WriteAllText(Path.Combine(git, "metrics.jsonl"), "theirs\n");
        var before = RunSafetyTests.Tree(_root);
        var r = Emapg(_root, ["train", .. Tiny, "--out", git]);
        AssertClean(r, "train --out .git");
        Assert.Equal(2, r.Rc);
        Assert.Contains("not an EmaPg run directory", r.Err);
        Assert.Equal(before, RunSafetyTests.Tree(_root));
    }

    [Fact]
    public void ASecondProcessOnARunningDirectoryIsRefusedWithThePid()
    {
        var d = Path.Combine(_root, "busy");
        using var first = CliProcess.Start(_root, ["train", .. TinyWith("--iterations", "100000"), "--out", d]);
        try
        {
            var owner = Path.Combine(d, RunDirectory.OwnerName);
            var deadline = DateTime.UtcNow.AddMinutes(1);
            while (!(File.Exists(owner) && File.Exists(Path.Combine(d, MetricsLog.FileName))) && DateTime.UtcNow < deadline) Thread.Sleep(100);
            Thread.Sleep(500);
            var resume = Emapg(_root, "train", "--resume", d);
            AssertClean(resume, "second writer");
            Assert.Equal(2, resume.Rc);
            Assert.Contains($"PID {first.Id}", resume.Err);
            var again = Emapg(_root, ["train", .. Tiny, "--out", d]);
            Assert.Equal(2, again.Rc);
            Assert.Contains("already holds an EmaPg run", again.Err);
            var conflicting = Emapg(_root, "train", "--resume", d, "--out", Path.Combine(_root, "x"));
            Assert.Equal(2, conflicting.Rc);
            Assert.Contains("takes no --out", conflicting.Err);
        }
        finally
        {
            first.Kill(entireProcessTree: true);
            first.WaitForExit();
        }
        var rows = MetricsLog.Read(d);
        Assert.Equal(Enumerable.Range(1, rows.Count).Select(i => (double)i), rows.Select(r => r["iteration"]));   // no iteration lost to the refused processes
        using var reopened = RunDirectory.OpenExisting(d, requireCheckpoint: false);   // the kill -9 released the lock
    }

    [Fact]
    public void DamagedCheckpointsAndBadOptionsAreOneLineErrors()
    {
        var run = Path.Combine(_root, "good");
        var ok = Emapg(_root, ["train", .. TinyWith("--temperature", "1e-40", "--is-clip-max", "1e308"), "--out", run]);
        AssertClean(ok, "tiny run at the extremes of the ranges");
        Assert.Equal(0, ok.Rc);

        var coldEval = Emapg(_root, "eval", run, "--samples", "1", "--k", "1", "--problems", "2", "--temperature", "1e-40");
        AssertClean(coldEval, "eval at temperature 1e-40");
        Assert.Equal(0, coldEval.Rc);

        // Only one checkpoint left, and it is truncated: eval and resume name the file.
        File.Delete(Path.Combine(run, RunDirectory.PreviousCheckpointName));
        var ckpt = Path.Combine(run, RunDirectory.CheckpointName);
        var bytes = File.ReadAllBytes(ckpt);
        File.WriteAllBytes(ckpt, bytes[..(bytes.Length / 2)]);
        foreach (var args in new[] { new[] { "eval", run, "--samples", "1", "--k", "1", "--problems", "2" }, ["train", "--resume", run] })
        {
            var r = Emapg(_root, args);
            AssertClean(r, string.Join(' ', args));
            Assert.Equal(2, r.Rc);
            Assert.Contains(ckpt, r.Err);
        }

        var file = Path.Combine(_root, "a-file");
        File.WriteAllText(file, "x");
        foreach (var args in new[]
        {
            new[] { "compare", "--presets", "" }, ["study", "ema-stability", "--out", file], ["train", "--out", ""], ["train", .. TinyWith("--kl-topk", "0"), "--out", Path.Combine(_root, "k0")],
            ["train", "--resume", Path.Combine(_root, "missing")], ["eval", file], ["plot", _root], ["train", "--iterations", "1", "--iterations", "2"],
        })
        {
            var r = Emapg(_root, args);
            AssertClean(r, string.Join(' ', args));
            Assert.Equal(2, r.Rc);
        }
        Assert.False(Directory.Exists(Path.Combine(_root, "k0")), "a rejected combination creates no run directory");
        Assert.Equal("x", File.ReadAllText(file));
    }

    [Fact]
    public void ADivergingRunStopsWithAClearMessageInsteadOfCrashingTheSampler()
    {
        var run = Path.Combine(_root, "diverge");
        // The settings on the default-width policy (the tiny one does not diverge); small batches keep it quick.
        var r = Emapg(_root, "train", "--iterations", "30", "--sft-steps", "2", "--eval-problems", "4", "--eval-samples", "2", "--pass-k", "2",
            "--prompts-per-iteration", "4", "--group-size", "2", "--threads", "1", "--kl-estimator", "topk-alpha", "--kl-beta", "1e6",
            "--learning-rate", "1", "--adam-beta2", "0", "--grad-clip", "0", "--out", run);
        AssertClean(r, "the issue's diverging run");
        Assert.Equal(2, r.Rc);
        Assert.Contains("diverged", r.Err);
        Assert.Contains(MetricsLog.Read(run), row => row["rolled_back"] > 0);
    }

    [Fact]
    public void IoFailuresAreOneLineAndInternalErrorsPointToAReport()
    {
        var se = new StringWriter();
        var old = Console.Error;
        Console.SetError(se);
        try
        {
            Assert.Equal(EmaPg.Cli.Program.IoErrorExit, EmaPg.Cli.Program.Report(new IOException("No space left on device : '/full/run/checkpoint.bin'")));
            Assert.Equal(EmaPg.Cli.Program.InternalErrorExit, EmaPg.Cli.Program.Report(new InvalidOperationException("bug")));
        }
        finally { Console.SetError(old); }
        var lines = se.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("error: No space left on device : '/full/run/checkpoint.bin'", lines[0]);
        Assert.StartsWith("internal error: InvalidOperationException: bug", lines[1]);
        var report = lines[2][(lines[2].IndexOf("report is in ", StringComparison.Ordinal) + "report is in ".Length)..].Split(';')[0];
        Assert.Contains("InvalidOperationException", File.ReadAllText(report));
        File.Delete(report);
    }
}

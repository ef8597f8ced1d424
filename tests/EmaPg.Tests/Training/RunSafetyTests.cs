using System.Security.Cryptography;
using System.Text.Json.Nodes;
using EmaPg.Common;
using EmaPg.Model;
using EmaPg.Training;
using static TorchSharp.torch;

namespace EmaPg.Tests.Training;

/// <summary>The run directory's rules: foreign directories untouched, one writer, checkpoint rotation and fallback, append-only metrics.</summary>
public class RunSafetyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emapg-runsafety-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Every file under <paramref name="dir"/> with its SHA-256, to prove a refused command left it byte for byte.</summary>
    internal static Dictionary<string, string> Tree(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(dir, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    [Fact]
    public void AForeignDirectoryIsRefusedAndLeftUntouched()
    {
        var git = Path.Combine(_dir, "clone", ".git");
        Directory.CreateDirectory(Path.Combine(git, "refs"));
        File.WriteAllText(Path.Combine(git, "config"), "[core]\n\tbare = false\n");
        File.WriteAllText(Path.Combine(git, "metrics.jsonl"), "not ours\n");
        var before = Tree(git);
        var e = Assert.Throws<UserError>(() => RunDirectory.CreateNew(git));
        Assert.Contains("not an EmaPg run directory", e.Message);
        Assert.Throws<UserError>(() => RunDirectory.OpenExisting(git));
        Assert.Equal(before, Tree(git));
    }

    [Fact]
    public void AnExistingRunIsNeverStartedOverUnlessItHasNoCheckpointAndRestartIsAsked()
    {
        var d = Path.Combine(_dir, "run");
        using (RunDirectory.CreateNew(d)) File.WriteAllText(Path.Combine(d, MetricsLog.FileName), "{\"iteration\":1}\n");
        Assert.Contains("--resume", Assert.Throws<UserError>(() => RunDirectory.CreateNew(d)).Message);
        var noCkpt = Assert.Throws<UserError>(() => RunDirectory.OpenExisting(d));
        Assert.Contains("no checkpoint", noCkpt.Message);
        Assert.Contains("--restart", noCkpt.Message);
        using (RunDirectory.CreateNew(d, restart: true)) Assert.False(File.Exists(Path.Combine(d, MetricsLog.FileName)));
        File.WriteAllText(Path.Combine(d, RunDirectory.CheckpointName), "x");
        Assert.Contains("--restart only", Assert.Throws<UserError>(() => RunDirectory.CreateNew(d, restart: true)).Message);
        Assert.True(File.Exists(Path.Combine(d, RunDirectory.CheckpointName)));
    }

    [Fact]
    public void ASecondWriterIsRefusedWithTheHoldersPid()
    {
        var d = Path.Combine(_dir, "locked");
        using var first = RunDirectory.CreateNew(d);
        var e = Assert.Throws<UserError>(() => RunDirectory.OpenExisting(d, requireCheckpoint: false));
        Assert.Contains($"PID {Environment.ProcessId}", e.Message);
        first.Dispose();
        using var again = RunDirectory.OpenExisting(d, requireCheckpoint: false);   // released with its holder
    }

    private static void WriteState(string path, float value)
    {
        using var t = full(3, value);
        TensorFile.Write(path, "trainer-checkpoint", new JsonObject { ["v"] = value }, [("w", t)]);
    }

    private static float ReadState(string path)
    {
        using var r = TensorFile.Open(path, "trainer-checkpoint");
        return r.Metadata["v"]!.GetValue<float>();
    }

    [Fact]
    public void CheckpointsRotateAndADamagedLatestFallsBackToThePreviousWithAWarning()
    {
        var d = Path.Combine(_dir, "ckpt");
        using var run = RunDirectory.CreateNew(d);
        run.SaveCheckpoint(p => WriteState(p, 1), p => ReadState(p));
        run.SaveCheckpoint(p => WriteState(p, 2), p => ReadState(p));
        Assert.Equal(2, run.LoadCheckpoint(ReadState, null));
        Assert.Equal(1, ReadState(run.PreviousCheckpointPath));

        // A new checkpoint that fails verification never replaces the good ones.
        Assert.Throws<IOException>(() => run.SaveCheckpoint(p => WriteState(p, 3), _ => throw new IOException("disk lied")));
        Assert.Equal(2, ReadState(run.CheckpointPath));

        var bytes = File.ReadAllBytes(run.CheckpointPath);
        File.WriteAllBytes(run.CheckpointPath, bytes[..(bytes.Length - 7)]);
        var warnings = new List<string>();
        Assert.Equal(1, run.LoadCheckpoint(ReadState, warnings.Add));
        Assert.Contains(warnings, w => w.Contains(RunDirectory.CheckpointName) && w.Contains(RunDirectory.PreviousCheckpointName));

        File.WriteAllText(run.PreviousCheckpointPath, "garbage");
        var e = Assert.Throws<UserError>(() => run.LoadCheckpoint(ReadState, null));
        Assert.Contains(run.CheckpointPath, e.Message);
        Assert.Contains(run.PreviousCheckpointPath, e.Message);
    }

    [Fact]
    public void AMalformedMetricsLineIsSkippedWithItsLineNumberAndLaterRowsSurvive()
    {
        var d = Path.Combine(_dir, "metrics");
        Directory.CreateDirectory(d);
        var path = Path.Combine(d, MetricsLog.FileName);
        File.WriteAllText(path, "{\"iteration\":1,\"r\":0.1}\n{\"iteration\":2,\"r\":0.2}\n{\"iteration\":3,\"r\":GARBAGE\n{\"iteration\":4,\"r\":0.4}\n{\"iteration\":5,\"r\":0.5}\n{\"iteration\":6,\"r\"");
        var original = File.ReadAllText(path);
        var warnings = new List<string>();
        Assert.Equal([1.0, 2, 4, 5], MetricsLog.Read(d, warnings.Add).Select(r => r["iteration"]));
        Assert.Contains(warnings, w => w.Contains($"{path}:3:"));
        Assert.Contains(warnings, w => w.Contains($"{path}:6:") && w.Contains("torn"));

        // Resume at 4: nothing before the torn tail is rewritten; the resume event supersedes row 5, which is then re-run.
        using (var log = new MetricsLog(d, 4))
        {
            Assert.Equal([1.0, 2, 4], log.History.Select(r => r["iteration"]));
            log.Write(5, new Dictionary<string, double> { ["r"] = 0.55 });
        }
        var now = File.ReadAllText(path);
        Assert.StartsWith(original[..original.LastIndexOf('\n')], now);
        Assert.Equal([1.0, 2, 4, 5], MetricsLog.Read(d).Select(r => r["iteration"]));
        Assert.Equal(0.55, MetricsLog.Read(d).Last()["r"]);
    }

    [Fact]
    public void ACorruptColdStartCacheIsRetrainedNotFatal()
    {
        var cache = Path.Combine(_dir, "cache");
        var c = new TrainConfig { SftSteps = 2, SftBatch = 4, HiddenSize = 16, IntermediateSize = 16, NumLayers = 1, NumHeads = 2, NumKvHeads = 1 };
        var task = TrainRun.MakeTask(c);
        var mc = TrainRun.MakeModelConfig(c, task);
        var first = ColdStart.Run(mc, task, TrainRun.MakeSftConfig(c), cache);
        first.Model.Dispose();
        File.WriteAllText(first.CheckpointPath, "torn");
        var log = new List<string>();
        var again = ColdStart.Run(mc, task, TrainRun.MakeSftConfig(c), cache, log: log.Add);
        using var m = again.Model;
        Assert.False(again.FromCache);
        Assert.Contains(log, l => l.Contains("warning") && l.Contains(first.CheckpointPath));
        using var reloaded = Checkpoint.Load(first.CheckpointPath);   // rewritten intact
    }
}

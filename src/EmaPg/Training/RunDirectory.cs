using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;

namespace EmaPg.Training;

/// <summary>
/// The rules of a run directory, the one place that decides what may be written where:
/// <list type="bullet">
/// <item>A directory is created, or adopted only when empty; one that holds anything but an EmaPg run (no
/// <see cref="MarkerName"/> with a known format version) is refused and left untouched.</item>
/// <item>One writer at a time: an exclusive OS lock on <see cref="LockName"/> held for the process's life; a
/// second process is refused with the holder's PID (from <see cref="OwnerName"/>).</item>
/// <item>Checkpoints rotate: the new one is written atomically, re-read and verified, and only then does the
/// old one become <see cref="PreviousCheckpointName"/>; a damaged latest checkpoint falls back to the previous
/// one with a warning.</item>
/// </list>
/// </summary>
public sealed class RunDirectory : IDisposable
{
    public const string MarkerName = ".emapg-run", LockName = ".lock", OwnerName = ".lock.owner";
    public const string ConfigName = "config", CheckpointName = "checkpoint.bin", PreviousCheckpointName = "checkpoint.prev.bin", SummaryName = "summary.json";
    public const int MarkerVersion = 1;

    private readonly FileStream _lock;
    public string Path { get; }
    public string ConfigPath => System.IO.Path.Combine(Path, ConfigName);
    public string CheckpointPath => System.IO.Path.Combine(Path, CheckpointName);
    public string PreviousCheckpointPath => System.IO.Path.Combine(Path, PreviousCheckpointName);
    public string SummaryPath => System.IO.Path.Combine(Path, SummaryName);
    public bool HasCheckpoint => File.Exists(CheckpointPath) || File.Exists(PreviousCheckpointPath);

    private RunDirectory(string path, FileStream lockStream)
    {
        Path = path;
        _lock = lockStream;
    }

    /// <summary>Checks a user-given run path before anything exists: non-empty, no file in its place.</summary>
    public static string ValidatePath(string? path, string option) => Check.DirectoryPath(path, option);

    /// <summary>Whether <paramref name="path"/> holds an EmaPg run (a marker this build understands).</summary>
    public static bool IsRun(string path) => File.Exists(System.IO.Path.Combine(path, MarkerName));

    /// <summary>
    /// Creates a new run at <paramref name="path"/>: the directory must not exist or be empty. With
    /// <paramref name="restart"/> an existing run that never reached a checkpoint may be started over.
    /// </summary>
    public static RunDirectory CreateNew(string path, bool restart = false)
    {
        ValidatePath(path, "--out");
        if (Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any())
        {
            if (!IsRun(path))
                throw new UserError($"'{path}' is not empty and is not an EmaPg run directory; refusing to write into it. Choose a new or empty directory with --out.");
            if (!restart)
                throw new UserError($"'{path}' already holds an EmaPg run; continue it with --resume {path}, or choose another --out.");
        }
        Directory.CreateDirectory(path);
        var dir = Acquire(path);
        try
        {
            if (restart && IsRun(path))
            {
                dir.ReadMarker();
                if (dir.HasCheckpoint)
                    throw new UserError($"'{path}' holds a run with a checkpoint; --restart only starts over runs that never reached one. Use --resume {path}, or another --out.");
                foreach (var name in new[] { "metrics.jsonl", ConfigName, SummaryName, "learning-curves.png" })
                    if (File.Exists(System.IO.Path.Combine(path, name))) File.Delete(System.IO.Path.Combine(path, name));
                var tb = System.IO.Path.Combine(path, "tensorboard");
                if (Directory.Exists(tb)) Directory.Delete(tb, recursive: true);
            }
            AtomicFile.WriteAllText(System.IO.Path.Combine(path, MarkerName), new JsonObject
            {
                ["format"] = "emapg-run", ["version"] = MarkerVersion, ["created_utc"] = DateTime.UtcNow.ToString("O"),
            }.ToJsonString());
            return dir;
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    /// <summary>Opens an existing run to continue it; it must hold a checkpoint.</summary>
    public static RunDirectory OpenExisting(string path, bool requireCheckpoint = true)
    {
        ValidatePath(path, "--resume");
        if (!Directory.Exists(path)) throw new UserError($"run directory '{path}' does not exist.");
        if (!IsRun(path)) throw new UserError($"'{path}' is not an EmaPg run directory (no {MarkerName}).");
        var dir = Acquire(path);
        try
        {
            dir.ReadMarker();
            if (requireCheckpoint && !dir.HasCheckpoint)
                throw new UserError($"'{path}' has no checkpoint yet: the run stopped before its first one, so there is nothing to resume. " +
                    $"Start it over explicitly with: emapg train --config {System.IO.Path.Combine(path, ConfigName)} --out {path} --restart");
            return dir;
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    /// <summary>Reads a run's marker without locking (for read-only verbs such as eval and plot).</summary>
    public static void RequireRun(string path)
    {
        if (!Directory.Exists(path)) throw new UserError($"run directory '{path}' does not exist.");
        if (!IsRun(path)) throw new UserError($"'{path}' is not an EmaPg run directory (no {MarkerName}).");
        ReadMarkerAt(path);
    }

    private void ReadMarker() => ReadMarkerAt(Path);

    private static void ReadMarkerAt(string path)
    {
        var marker = System.IO.Path.Combine(path, MarkerName);
        int version;
        try { version = JsonNode.Parse(File.ReadAllText(marker))!["version"]!.GetValue<int>(); }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new CorruptFileError(marker, "unreadable run marker");
        }
        if (version != MarkerVersion) throw new UserError($"'{path}' was written by a run format version {version}; this build reads version {MarkerVersion}.");
    }

    private static RunDirectory Acquire(string path)
    {
        var lockPath = System.IO.Path.Combine(path, LockName);
        var ownerPath = System.IO.Path.Combine(path, OwnerName);
        FileStream fs;
        try
        {
            // FileShare.None takes an exclusive flock on Unix: released by the kernel when the process dies, even by kill -9.
            fs = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException) when (File.Exists(lockPath))
        {
            string owner = File.Exists(ownerPath) ? File.ReadAllText(ownerPath).Trim() : "unknown";
            throw new UserError($"'{path}' is in use by another EmaPg process (PID {owner}); wait for it to finish or stop it first.");
        }
        try
        {
            AtomicFile.WriteAllText(ownerPath, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        catch
        {
            fs.Dispose();
            throw;
        }
        return new RunDirectory(path, fs);
    }

    /// <summary>Writes a checkpoint through <paramref name="write"/>, verifies it with <paramref name="verify"/>, then rotates: latest → previous, new → latest.</summary>
    public void SaveCheckpoint(Action<string> write, Action<string> verify)
    {
        var fresh = CheckpointPath + ".new";
        write(fresh);
        verify(fresh);
        if (File.Exists(CheckpointPath)) File.Move(CheckpointPath, PreviousCheckpointPath, overwrite: true);
        File.Move(fresh, CheckpointPath, overwrite: true);
    }

    /// <summary>The Hugging Face folders of the policy and the EMA anchor, loadable by `emapg model score` and by transformers.</summary>
    public const string PolicyFolder = "policy", AnchorFolder = "anchor";

    /// <summary>
    /// Replaces the folder <paramref name="name"/> with what <paramref name="write"/> puts into a fresh one: written beside it
    /// first, then swapped in by renames, so a kill leaves the previous complete folder (or, between the two renames, the
    /// new one under a temporary name that the next save removes) and never a half-written one under <paramref name="name"/>.
    /// </summary>
    public void ReplaceFolder(string name, Action<string> write)
    {
        string target = System.IO.Path.Combine(Path, name), fresh = target + ".new", old = target + ".old";
        foreach (var leftover in new[] { fresh, old })
            if (Directory.Exists(leftover)) Directory.Delete(leftover, recursive: true);
        write(fresh);
        if (Directory.Exists(target)) Directory.Move(target, old);
        Directory.Move(fresh, target);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
    }

    /// <summary>
    /// Loads the latest checkpoint with <paramref name="load"/>; if it is damaged (or missing after a kill between the two
    /// renames), warns and loads the previous one. Fails with both files named when neither loads.
    /// </summary>
    public T LoadCheckpoint<T>(Func<string, T> load, Action<string>? warn) => LoadLatestCheckpoint(Path, load, warn);

    /// <summary><see cref="LoadCheckpoint"/> for read-only users (eval) that do not hold the lock.</summary>
    public static T LoadLatestCheckpoint<T>(string runDir, Func<string, T> load, Action<string>? warn)
    {
        string latest = System.IO.Path.Combine(runDir, CheckpointName), previous = System.IO.Path.Combine(runDir, PreviousCheckpointName);
        CorruptFileError? latestError = null;
        if (File.Exists(latest))
        {
            try { return load(latest); }
            catch (CorruptFileError e) { latestError = e; }
        }
        if (File.Exists(previous))
        {
            warn?.Invoke(latestError is null
                ? $"warning: {CheckpointName} is missing; resuming from {PreviousCheckpointName}."
                : $"warning: {latestError.Message} Falling back to the previous checkpoint, {PreviousCheckpointName}.");
            try { return load(previous); }
            catch (CorruptFileError e2) when (latestError is not null)
            {
                throw new UserError($"both checkpoints are damaged: {latestError.Message} {e2.Message}");
            }
        }
        throw latestError ?? new UserError($"'{runDir}' has no checkpoint.");
    }

    public void Dispose()
    {
        _lock.Dispose();
    }
}

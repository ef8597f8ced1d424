namespace EmaPg.Common;

/// <summary>
/// Whole-file writes that a kill -9, a full disk or a concurrent writer cannot tear: the bytes go to a
/// temporary file unique to this process and call (two writers never share it), are flushed to disk, and the
/// file is renamed over the target. On any failure the temporary file is deleted and the target is untouched.
/// </summary>
public static class AtomicFile
{
    /// <summary>A sibling path no other process or call uses: target.tmp-PID-GUID.</summary>
    public static string TempPathFor(string path) => $"{path}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";

    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var tmp = TempPathFor(full);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) TryDelete(tmp);
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, s => { using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true); w.Write(text); });

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

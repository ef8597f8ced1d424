using System.Globalization;
using System.Text;
using System.Text.Json;
using TorchSharp;

namespace EmaPg.Training;

/// <summary>
/// Per-iteration metrics: one JSON object per line in metrics.jsonl (flushed every line, so a killed run
/// loses at most the line being written) and the same scalars in TensorBoard event files via TorchSharp's
/// SummaryWriter. The file is append-only: a resume appends <c>{"event":"resume","iteration":k}</c> and then
/// the re-run iterations, and readers (<see cref="Read"/>) let that event supersede the rows after k, so the
/// history a resumed run reads is the one an uninterrupted run writes while no byte written before is rewritten.
/// Only a torn last line (a kill in the middle of a write) is cut off before appending. A malformed line is
/// reported with its line number and skipped, never a reason to drop the rows after it. TensorBoard's files are
/// append-only too, so the iterations re-run after a resume are not written to them again.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    public const string FileName = "metrics.jsonl";
    private readonly StreamWriter _jsonl;
    private readonly TorchSharp.Modules.SummaryWriter _tb;   // appends each event to its file as it is added
    private readonly List<IReadOnlyDictionary<string, double>> _history;
    private readonly int _tensorboardHas;

    public string JsonlPath { get; }
    public IReadOnlyList<IReadOnlyDictionary<string, double>> History => _history;

    /// <summary>Opens runDir's log to append iterations after <paramref name="keepThroughIteration"/> (0 for a new run).</summary>
    public MetricsLog(string runDir, int keepThroughIteration, Action<string>? warn = null)
    {
        JsonlPath = Path.Combine(runDir, FileName);
        var parsed = Parse(JsonlPath, warn);
        _tensorboardHas = parsed.MaxIteration;
        _history = parsed.Rows.Where(r => r["iteration"] <= keepThroughIteration).Select(r => (IReadOnlyDictionary<string, double>)r).ToList();
        if (parsed.TornTailAt is long cut)
            using (var fs = new FileStream(JsonlPath, FileMode.Open, FileAccess.Write)) fs.SetLength(cut);
        _jsonl = new StreamWriter(new FileStream(JsonlPath, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
        if (parsed.Rows.Count > 0 || parsed.MaxIteration > 0)
        {
            _jsonl.Write($"{{\"event\":\"resume\",\"iteration\":{keepThroughIteration}}}\n");
            _jsonl.Flush();
        }
        _tb = torch.utils.tensorboard.SummaryWriter(Path.Combine(runDir, "tensorboard"), createRunName: false);
    }

    /// <summary>The effective history of a run's metrics.jsonl (see the class summary); non-finite values were written as null and are dropped.</summary>
    public static List<IReadOnlyDictionary<string, double>> Read(string runDir, Action<string>? warn = null) =>
        Parse(Path.Combine(runDir, FileName), warn).Rows.Select(r => (IReadOnlyDictionary<string, double>)r).ToList();

    private sealed record Parsed(List<Dictionary<string, double>> Rows, int MaxIteration, long? TornTailAt);

    private static Parsed Parse(string path, Action<string>? warn)
    {
        var rows = new List<Dictionary<string, double>>();
        int max = 0;
        if (!File.Exists(path)) return new Parsed(rows, 0, null);
        var bytes = File.ReadAllBytes(path);
        long? torn = null;
        int lineNo = 0;
        for (int pos = 0; pos < bytes.Length;)
        {
            int nl = Array.IndexOf(bytes, (byte)'\n', pos);
            bool complete = nl >= 0;
            int end = complete ? nl : bytes.Length;
            lineNo++;
            var line = Encoding.UTF8.GetString(bytes, pos, end - pos);
            int start = pos;
            pos = end + 1;
            if (string.IsNullOrWhiteSpace(line)) continue;
            Dictionary<string, JsonElement>? raw = null;
            try { raw = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(line); }
            catch (JsonException) { }
            if (raw is null || !raw.TryGetValue("iteration", out var itEl) || itEl.ValueKind != JsonValueKind.Number || !itEl.TryGetInt32(out int it) || it < 0)
            {
                if (!complete) { torn = start; warn?.Invoke($"warning: {path}:{lineNo}: torn last line (the run was killed while writing it); it is dropped."); }
                else warn?.Invoke($"warning: {path}:{lineNo}: unreadable metrics line skipped.");
                continue;
            }
            if (raw.TryGetValue("event", out var ev))
            {
                if (ev.ValueKind == JsonValueKind.String && ev.GetString() == "resume") rows.RemoveAll(r => r["iteration"] > it);
                else warn?.Invoke($"warning: {path}:{lineNo}: unknown event skipped.");
                continue;
            }
            var row = new Dictionary<string, double>();
            foreach (var (k, v) in raw)
                if (v.ValueKind == JsonValueKind.Number) row[k] = v.GetDouble();
            if (!complete) { torn = start; warn?.Invoke($"warning: {path}:{lineNo}: last line has no newline (the run was killed while writing it); it is dropped."); continue; }
            rows.RemoveAll(r => r["iteration"] >= it);
            rows.Add(row);
            max = Math.Max(max, it);
        }
        return new Parsed(rows, max, torn);
    }

    public void Write(int iteration, IReadOnlyDictionary<string, double> metrics)
    {
        var row = new Dictionary<string, double>(metrics) { ["iteration"] = iteration };
        var sb = new StringBuilder("{");
        bool first = true;
        foreach (var (k, v) in row.OrderBy(kv => kv.Key == "iteration" ? "" : kv.Key, StringComparer.Ordinal))
        {
            if (!first) sb.Append(',');
            first = false;
            sb.Append('"').Append(k).Append("\":").Append(double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "null");
            if (k != "iteration" && double.IsFinite(v) && iteration > _tensorboardHas) _tb.add_scalar(k, (float)v, iteration);
        }
        _jsonl.Write(sb.Append("}\n").ToString());
        _jsonl.Flush();
        _history.Add(row);
    }

    public void Dispose()
    {
        _jsonl.Dispose();
    }
}

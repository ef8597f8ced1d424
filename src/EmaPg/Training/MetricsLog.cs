using System.Globalization;
using System.Text;
using System.Text.Json;
using TorchSharp;

namespace EmaPg.Training;

/// <summary>
/// Per-iteration metrics: one JSON object per line in metrics.jsonl (flushed every line, so a killed run
/// loses at most the line being written) and the same scalars in TensorBoard event files via TorchSharp's
/// SummaryWriter. On resume the file is cut back to the checkpointed iteration, so a resumed run's
/// metrics.jsonl is line-for-line the one an uninterrupted run writes. TensorBoard's files are append-only, so
/// the iterations re-run after a resume that an earlier session had already logged (identically: the run is
/// deterministic) are not written to TensorBoard again, which would show every such point twice.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    private readonly StreamWriter _jsonl;
    private readonly TorchSharp.Modules.SummaryWriter _tb;   // appends each event to its file as it is added
    private readonly List<IReadOnlyDictionary<string, double>> _history = [];
    private readonly int _tensorboardHas;

    public string JsonlPath { get; }
    public IReadOnlyList<IReadOnlyDictionary<string, double>> History => _history;

    public MetricsLog(string runDir, int keepThroughIteration)
    {
        JsonlPath = Path.Combine(runDir, "metrics.jsonl");
        var rows = ReadRows(JsonlPath).ToList();
        // A row reaches metrics.jsonl only after its scalars reached the event file (see Write).
        _tensorboardHas = rows.Select(x => (int)x.Row["iteration"]).DefaultIfEmpty(0).Max();
        var kept = new List<string>();
        foreach (var (line, row) in rows.TakeWhile(x => x.Row["iteration"] <= keepThroughIteration))
        {
            kept.Add(line);
            _history.Add(row);
        }
        File.WriteAllText(JsonlPath, kept.Count == 0 ? "" : string.Join("\n", kept) + "\n");
        _jsonl = new StreamWriter(new FileStream(JsonlPath, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
        _tb = torch.utils.tensorboard.SummaryWriter(Path.Combine(runDir, "tensorboard"), createRunName: false);
    }

    /// <summary>The complete rows of a run's metrics.jsonl (a torn last line is ignored); non-finite values were written as null and are dropped.</summary>
    public static List<IReadOnlyDictionary<string, double>> Read(string runDir) =>
        ReadRows(Path.Combine(runDir, "metrics.jsonl")).Select(x => (IReadOnlyDictionary<string, double>)x.Row).ToList();

    private static IEnumerable<(string Line, Dictionary<string, double> Row)> ReadRows(string path)
    {
        if (!File.Exists(path)) yield break;
        foreach (var line in File.ReadAllLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            Dictionary<string, double?>? raw;
            try { raw = JsonSerializer.Deserialize<Dictionary<string, double?>>(line); }
            catch (JsonException) { yield break; }   // a torn last line from a kill: drop it and everything after
            if (raw is null || raw.GetValueOrDefault("iteration") is null) yield break;
            yield return (line, raw.Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value!.Value));
        }
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

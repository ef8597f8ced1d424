using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Data;

namespace EmaPg.Rewards;

/// <summary>
/// A reward computed by a long-lived external command (e.g. a Python script), started once and reused.
/// Protocol, one line each way per call: stdin gets
/// <c>{"response": str, "ground_truth": str | [str], "data_source": str | null, "extra_info": any}</c>,
/// stdout answers <c>{"score": number}</c> or a bare number. A call that outlasts the timeout kills the
/// process (the next call starts a fresh one) and throws <see cref="RewardFailure"/> (Timeout); a process
/// that exits or prints something else throws it too (Exception / NonNumber). Stderr is passed through.
/// </summary>
public sealed class ExternalProcessReward : IReward, IDisposable
{
    private readonly string _command;
    private readonly TimeSpan _timeout;
    private readonly object _gate = new();
    private Process? _process;
    private Task<string?>? _pendingLine;

    public ExternalProcessReward(string command, TimeSpan timeout)
    {
        if (string.IsNullOrWhiteSpace(command)) throw new Common.UserError("--command must name the reward command to run, got an empty string.");
        _command = command;
        _timeout = timeout;
    }

    /// <summary>How many times the process was started (1 unless timeouts or crashes forced restarts).</summary>
    public int Starts { get; private set; }

    public double Score(string response, PromptExample example)
    {
        var request = new JsonObject
        {
            ["response"] = response,
            ["ground_truth"] = example.GroundTruths.Count == 1 ? JsonValue.Create(example.GroundTruths[0]) : new JsonArray([.. example.GroundTruths.Select(g => (JsonNode?)JsonValue.Create(g))]),
            ["data_source"] = example.DataSource,
            ["extra_info"] = example.ExtraInfo?.DeepClone(),
        };
        lock (_gate)
        {
            var p = EnsureStarted();
            try
            {
                p.StandardInput.WriteLine(request.ToJsonString());
                p.StandardInput.Flush();
            }
            catch (IOException e)
            {
                Kill();
                throw new RewardFailure(RewardFailureKind.Exception, $"reward command '{_command}' is not reading its input: {e.Message}");
            }
            _pendingLine ??= p.StandardOutput.ReadLineAsync();
            if (!_pendingLine.Wait(_timeout))
            {
                Kill();
                throw new RewardFailure(RewardFailureKind.Timeout, $"reward command '{_command}' gave no answer within {_timeout.TotalSeconds:0.###} s; restarted.");
            }
            var line = _pendingLine.Result;
            _pendingLine = null;
            if (line is null)
            {
                int? code = p.WaitForExit(5000) ? p.ExitCode : null;
                Kill();
                throw new RewardFailure(RewardFailureKind.Exception, $"reward command '{_command}' exited{(code is null ? "" : $" with code {code}")} before answering; restarted.");
            }
            return Parse(line);
        }
    }

    /// <summary>A line of the command's output: <c>{"score": number}</c> or a bare number; anything else is a NonNumber failure.</summary>
    public static double Parse(string line)
    {
        var t = line.Trim();
        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var bare)) return Finite(bare, line);
        try
        {
            if (JsonNode.Parse(t) is JsonObject o && o["score"] is JsonValue v && v.TryGetValue<double>(out var s)) return Finite(s, line);
        }
        catch (JsonException) { }
        throw new RewardFailure(RewardFailureKind.NonNumber, $"reward output is not a number or {{\"score\": number}}: '{Clip(line)}'");
    }

    private static double Finite(double v, string line) =>
        double.IsFinite(v) ? v : throw new RewardFailure(RewardFailureKind.NonNumber, $"reward output is not finite: '{Clip(line)}'");

    private static string Clip(string s) => s.Length <= 80 ? s : s[..80] + "…";

    private Process EnsureStarted()
    {
        if (_process is { HasExited: false }) return _process;
        Kill();
        var psi = new ProcessStartInfo("/bin/sh", ["-c", _command])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = false,
            UseShellExecute = false,
        };
        try { _process = Process.Start(psi) ?? throw new InvalidOperationException("no process"); }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new RewardFailure(RewardFailureKind.Exception, $"cannot start reward command '{_command}': {e.Message}");
        }
        Starts++;
        return _process;
    }

    private void Kill()
    {
        _pendingLine = null;
        if (_process is null) return;
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.Dispose();
        _process = null;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_process is { HasExited: false })
            {
                try { _process.StandardInput.Close(); } catch (IOException) { }
                if (!_process.WaitForExit(1000)) Kill();
            }
            Kill();
        }
    }
}

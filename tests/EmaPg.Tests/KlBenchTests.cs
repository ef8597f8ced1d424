using System.Text.Json;
using EmaPg.Bench;

namespace EmaPg.Tests;

/// <summary>
/// `emapg bench kl --quick`: the structure of the report and of the CLI's output. Never asserts on time (the
/// machine is shared); memory figures are checked only where they are exact by construction (stored inputs,
/// gradient size).
/// </summary>
public class KlBenchTests
{
    [Fact]
    public void QuickRunReportsBothEstimatorsForEveryVocabulary()
    {
        var o = KlBenchOptions.QuickDefaults;
        var rep = KlBench.Run(o);

        Assert.Equal("kl", rep.Benchmark);
        Assert.True(rep.Quick);
        Assert.Equal("cpu", rep.Device);
        Assert.Equal("float32", rep.DType);
        Assert.Equal(o.Vocab, rep.Rows.Select(r => r.Vocab).ToList());
        foreach (var key in new[] { "time", "stored inputs", "tracked forward", "peak RSS extra", "not measured" })
            Assert.Contains(key, rep.Definitions.Keys);

        long n = o.Tokens, k = o.K;
        foreach (var row in rep.Rows)
        {
            long v = row.Vocab;
            Assert.Equal(KlBench.ExactName, row.Exact.Estimator);
            Assert.Equal(KlBench.TopkName, row.Topk.Estimator);
            foreach (var m in new[] { row.Exact, row.Topk })
            {
                Assert.Equal(o.Reps, m.TimesMs.Count);
                Assert.Equal(n * v * sizeof(float), m.GradientBytes);   // dense [N,V] gradient for both
                Assert.True(m.TrackedForwardBytes > 0);
                Assert.True(double.IsFinite(m.MeanKl));
                if (rep.PeakRssAvailable) Assert.Equal(o.Reps, m.PeakRssExtraBytes.Count);
            }
            // Stored inputs: anchor logits N×V floats against N×(2k+3) numbers (indices int64).
            Assert.Equal(v, row.Exact.StoredNumbersPerToken);
            Assert.Equal(2 * k + 3, row.Topk.StoredNumbersPerToken);
            Assert.Equal(n * v * sizeof(float), row.Exact.StoredInputBytes);
            Assert.Equal(n * (k * sizeof(long) + k * sizeof(float) + 2 * sizeof(float) + sizeof(long)), row.Topk.StoredInputBytes);
            Assert.True(row.Exact.MeanKl >= 0);
            Assert.Equal((double)row.Exact.StoredInputBytes / row.Topk.StoredInputBytes, row.ExactOverTopk.StoredInputs!.Value, 12);
            // Ratios are exact over Top-k (> 1 means Top-k is smaller/faster), never the other way round.
            Assert.Equal(row.Exact.TimeMsMedian / row.Topk.TimeMsMedian, row.ExactOverTopk.Time!.Value, 12);
            Assert.Equal((double)row.Exact.TrackedForwardBytes / row.Topk.TrackedForwardBytes, row.ExactOverTopk.TrackedForward!.Value, 12);
            // The exact forward holds several [N,V] intermediates; Top-k's forward holds only [N,1] and [N,k] ones.
            Assert.True(row.Exact.TrackedForwardBytes >= n * v * sizeof(float));
            Assert.True(row.Topk.TrackedForwardBytes < n * v * sizeof(float));
        }
    }

    [Fact]
    public void CliQuickJsonHasTheDocumentedShape()
    {
        var (rc, stdout, stderr) = Cli("bench", "kl", "--quick", "--json", "--vocab", "300,500", "--k", "4");
        Assert.True(rc == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.Equal("kl", root.GetProperty("benchmark").GetString());
        Assert.Equal(4, root.GetProperty("k").GetInt32());
        Assert.True(root.GetProperty("quick").GetBoolean());
        var rows = root.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(new[] { 300, 500 }, rows.Select(r => r.GetProperty("vocab").GetInt32()).ToArray());
        foreach (var r in rows)
        {
            foreach (var est in new[] { "exact", "topk" })
            {
                var m = r.GetProperty(est);
                foreach (var p in new[] { "estimator", "timeMsMedian", "timesMs", "storedInputBytes", "storedNumbersPerToken", "trackedForwardBytes", "gradientBytes", "peakRssExtraBytesMedian", "meanKl", "meanKlStdErr" })
                    Assert.True(m.TryGetProperty(p, out _), $"{est}.{p} missing");
            }
            var ratios = r.GetProperty("exactOverTopk");
            foreach (var p in new[] { "time", "storedInputs", "trackedForward", "peakRssExtra" })
                Assert.True(ratios.TryGetProperty(p, out _), $"exactOverTopk.{p} missing");
        }
    }

    [Fact]
    public void CliQuickTablePrintsRatiosAndDefinitions()
    {
        var (rc, stdout, stderr) = Cli("bench", "kl", "--quick");
        Assert.True(rc == 0, stderr);
        foreach (var s in new[] { "exact-reverse", "topk-reverse", "exact ÷ top-k", "QUICK", "not measured:", "peak RSS extra:" })
            Assert.Contains(s, stdout);
    }

    [Theory]
    [InlineData("--k", "2000", "--k must be")]
    [InlineData("--vocab", "64,abc", "--vocab must be")]
    [InlineData("--vocab", "1", "--vocab must be")]
    [InlineData("--reps", "0", "--reps must be")]
    [InlineData("--dtype", "float16", "--dtype must be")]
    [InlineData("--device", "tpu", "--device must be")]
    public void CliRejectsBadOptionsNamingThem(string option, string value, string message)
    {
        var (rc, _, stderr) = Cli("bench", "kl", "--quick", option, value);
        Assert.Equal(2, rc);
        Assert.Contains(message, stderr);
    }

    private static (int Rc, string Stdout, string Stderr) Cli(params string[] args) => EmaPg.Tests.Cli.CliProcess.Run(args);
}

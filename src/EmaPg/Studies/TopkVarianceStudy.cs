using EmaPg.Common;
using EmaPg.Divergences;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Studies;

/// <summary>One cell of the study for one task: relative RMSE (eq. 108) and its Monte-Carlo error.</summary>
public sealed record TaskCell(double Mass, int K, int Batch, string Estimator, int Task, int Reps, double RelRmse, double RelStandardError);

/// <summary>One cell averaged over tasks (what topk-variance.csv holds), with the Monte-Carlo bookkeeping.</summary>
public sealed record VarianceCell(double Mass, int K, int Batch, string Estimator, double RelRmse, double RelStandardError, int TotalReps, int MinReps, int MaxReps);

public sealed record TopkVarianceResult(
    TopkVarianceConfig Config, IReadOnlyList<VarianceCell> Cells, IReadOnlyList<TaskCell> TaskCells,
    IReadOnlyList<CriticalSampleSize> Critical, IReadOnlyList<(double Mass, int Task, double Scale, double Achieved)> Tasks, TimeSpan Elapsed)
{
    public long TotalReps => TaskCells.Sum(c => (long)c.Reps);
    public double WorstRelStandardError => Cells.Count == 0 ? 0 : Cells.Max(c => c.RelStandardError);
}

/// <summary>Progress of a running study: units done out of total, and what is being worked on.</summary>
public readonly record struct StudyProgress(long Done, long Total, string Description);

/// <summary>
/// The Top-k bias–variance study of App. G / Fig. 4: relative RMSE of per-token reverse-KL gradient
/// estimators against the exact gradient, over concentration m, k and the number of sampled tokens B.
/// Each (task, estimator, k, B) cell runs repetitions in doubling rounds until the relative standard error of
/// its RMSE is below <see cref="TopkVarianceConfig.McRelativeError"/> (or MaxReps is reached).
/// </summary>
public static class TopkVarianceStudy
{
    public static TopkVarianceResult Run(TopkVarianceConfig c, IProgress<StudyProgress>? progress = null, CancellationToken cancel = default)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var device = torch.device(c.DeviceName);
        var taskCells = new List<TaskCell>();
        var tasks = new List<(double, int, double, double)>();
        var est = c.Estimators.ToDictionary(e => e.Label, e => e.Resolve());
        // Work units, weighted by an estimate of the cost: one unit per cell.
        long total = (long)c.Masses.Count * c.Tasks * c.Batches.Count * c.Estimators.Sum(e => e.UsesK ? c.Ks.Count : 1);
        long done = 0;
        for (int mi = 0; mi < c.Masses.Count; mi++)
        {
            double mass = c.Masses[mi];
            for (int t = 0; t < c.Tasks; t++)
            {
                using var task = SyntheticTask.Create(c.Vocab, mass, SeedMix.Combine(c.Seed, t), device, c.DType);
                tasks.Add((mass, t, task.Scale, task.AchievedMass));
                using var gTrue = BatchGradient.TrueGradient(task);
                using var cdf = BatchGradient.Cdf(task);
                double gNorm = gTrue.to_type(ScalarType.Float64).norm().item<double>();
                foreach (var e in c.Estimators)
                {
                    foreach (int k in e.UsesK ? c.Ks : [0])
                    {
                        using var q = e.UsesK ? task.TopK(k) : null;
                        foreach (int b in c.Batches)
                        {
                            cancel.ThrowIfCancellationRequested();
                            progress?.Report(new StudyProgress(done, total, $"m={mass} task {t + 1}/{c.Tasks} {e.Label} k={k} B={b}"));
                            var gen = new Generator((ulong)SeedMix.Combine(c.Seed, t, mi, Array.IndexOf(VarianceEstimator.All.ToArray(), e), k, b));
                            var mc = Measure(task, est[e.Label], q, b, gTrue, cdf, gen, c);
                            taskCells.Add(new TaskCell(mass, k, b, e.Label, t, mc.Count, mc.Rmse / gNorm, mc.RelativeStandardError));
                            done++;
                        }
                    }
                }
            }
        }
        progress?.Report(new StudyProgress(done, total, "done"));
        var cells = Aggregate(taskCells);
        return new TopkVarianceResult(c, cells, taskCells, CriticalSampleSize.FromCells(cells, c.Masses, c.Ks), tasks, watch.Elapsed);
    }

    /// <summary>The Monte-Carlo RMSE of one (task, estimator, q, B) cell, repetitions doubling until precise enough.</summary>
    public static MonteCarloRmse Measure(SyntheticTask task, DivergenceEstimator e, Tensor? q, int batch, Tensor gTrue, Tensor cdf, Generator gen, TopkVarianceConfig c)
    {
        var mc = new MonteCarloRmse();
        // A deterministic estimator (no sampled term) needs only enough repetitions to show a zero spread.
        int want = e.Sampled ? c.MinReps : 2;
        // Rare-event guard: the Top-k tail term fires only when a draw lands outside q (probability 1 − M_q), and
        // its rare, large contributions dominate the error. A few repetitions that all miss the tail would show
        // no spread and stop early with a far too small RMSE, so first draw enough batches to expect
        // MinTailDraws tail tokens in total.
        if (e.Sampled && q is not null && q.shape[0] > 0)
        {
            double tail = TailMass(task, q);
            if (tail > 0) want = (int)Math.Min(c.MaxReps, Math.Max(want, Math.Ceiling(c.MinTailDraws / (batch * tail))));
        }
        double target = c.TaskRelativeError;
        while (true)
        {
            while (mc.Count < want)
            {
                int chunk = Math.Min(want - mc.Count, ChunkReps(task.Vocab, batch, q is null ? 0 : (int)q.shape[0], c.ChunkElements));
                mc.Add(BatchGradient.SquaredErrors(task, e, q, batch, chunk, gTrue, cdf, gen, c.Options));
            }
            if (mc.RelativeStandardError <= target || mc.Count >= c.MaxReps) return mc;
            want = Math.Min(c.MaxReps, 2 * mc.Count);
        }
    }

    /// <summary>1 − M_q: the probability that a draw from π falls outside the index set q.</summary>
    public static double TailMass(SyntheticTask task, Tensor q)
    {
        using var _ = NewDisposeScope();
        return Math.Max(0, 1 - task.PolicyLogits.to_type(ScalarType.Float64).softmax(0).index_select(0, q).sum().item<double>());
    }

    /// <summary>Repetitions per forward/backward so that the [R, V] leaf and the [rows, k] gathers stay under the cap.</summary>
    public static int ChunkReps(int vocab, int batch, int k, long cap)
    {
        long perRep = vocab + (long)Math.Min(batch, vocab) * (k + 4);
        return (int)Math.Clamp(cap / perRep, 1, 1024);
    }

    /// <summary>Averages each cell's relative RMSE over tasks; the standard error of the mean follows from the tasks' own.</summary>
    public static List<VarianceCell> Aggregate(IEnumerable<TaskCell> cells) =>
        cells.GroupBy(x => (x.Mass, x.K, x.Batch, x.Estimator))
            .Select(g =>
            {
                int n = g.Count();
                double mean = g.Average(x => x.RelRmse);
                double se = Math.Sqrt(g.Sum(x => Math.Pow(x.RelRmse * x.RelStandardError, 2))) / n;
                return new VarianceCell(g.Key.Mass, g.Key.K, g.Key.Batch, g.Key.Estimator, mean, mean > 0 ? se / mean : 0,
                    g.Sum(x => x.Reps), g.Min(x => x.Reps), g.Max(x => x.Reps));
            })
            .OrderBy(x => x.Mass).ThenBy(x => x.Estimator).ThenBy(x => x.K).ThenBy(x => x.Batch)
            .ToList();
}

using System.Globalization;
using System.Text;

namespace EmaPg.Studies;

/// <summary>The CSV files of the Top-k variance study.</summary>
public static class TopkVarianceOutput
{
    public const string VarianceFile = "topk-variance.csv";
    public const string CriticalFile = "critical-sample-size.csv";
    public const string MonteCarloFile = "topk-variance-mc.csv";
    public const string TasksFile = "topk-variance-tasks.csv";
    public const string VarianceHeader = "mass,k,batch,estimator,rel_rmse";
    public const string CriticalHeader = "mass,k,critical_batch";

    private static string F(double x) => x.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Writes topk-variance.csv, critical-sample-size.csv and the Monte-Carlo/task detail files; returns their paths.</summary>
    public static IReadOnlyList<string> Write(TopkVarianceResult r, string dir)
    {
        Directory.CreateDirectory(dir);
        var paths = new List<string>();
        void Emit(string name, string header, IEnumerable<string> lines)
        {
            var sb = new StringBuilder().Append(header).Append('\n');
            foreach (var l in lines) sb.Append(l).Append('\n');
            var path = Path.Combine(dir, name);
            File.WriteAllText(path, sb.ToString());
            paths.Add(path);
        }
        Emit(VarianceFile, VarianceHeader, r.Cells.Select(c => $"{F(c.Mass)},{c.K},{c.Batch},{c.Estimator},{F(c.RelRmse)}"));
        Emit(CriticalFile, CriticalHeader, r.Critical.Select(c => $"{F(c.Mass)},{c.K},{(c.Batch is int b ? b.ToString(CultureInfo.InvariantCulture) : "")}"));
        Emit(MonteCarloFile, "mass,k,batch,estimator,task,reps,rel_rmse,rel_standard_error",
            r.TaskCells.Select(c => $"{F(c.Mass)},{c.K},{c.Batch},{c.Estimator},{c.Task},{c.Reps},{F(c.RelRmse)},{F(c.RelStandardError)}"));
        Emit(TasksFile, "mass,task,scale,achieved_top32_mass", r.Tasks.Select(t => $"{F(t.Mass)},{t.Task},{F(t.Scale)},{F(t.Achieved)}"));
        return paths;
    }
}

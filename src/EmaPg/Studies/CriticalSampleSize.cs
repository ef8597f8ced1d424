namespace EmaPg.Studies;

/// <summary>
/// The critical sample size of App. G for one (mass, k): the smallest B of the grid from which Top-k KL
/// (the corrected estimator, label "topk") has lower gradient RMSE than Truncated KL at that B and at every
/// larger B of the grid; null when it never does.
/// </summary>
public sealed record CriticalSampleSize(double Mass, int K, int? Batch)
{
    public static List<CriticalSampleSize> FromCells(IReadOnlyList<VarianceCell> cells, IEnumerable<double> masses, IEnumerable<int> ks, string topk = "topk", string truncated = "truncated")
    {
        var list = new List<CriticalSampleSize>();
        foreach (var m in masses)
            foreach (var k in ks)
            {
                var tk = cells.Where(c => c.Mass == m && c.K == k && c.Estimator == topk).ToDictionary(c => c.Batch, c => c.RelRmse);
                var tr = cells.Where(c => c.Mass == m && c.K == k && c.Estimator == truncated).ToDictionary(c => c.Batch, c => c.RelRmse);
                var bs = tk.Keys.Intersect(tr.Keys).OrderBy(b => b).ToList();
                if (bs.Count == 0) continue;
                int? critical = null;
                for (int i = bs.Count - 1; i >= 0 && tk[bs[i]] < tr[bs[i]]; i--) critical = bs[i];
                list.Add(new CriticalSampleSize(m, k, critical));
            }
        return list;
    }
}

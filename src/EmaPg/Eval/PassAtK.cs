namespace EmaPg.Eval;

/// <summary>
/// Unbiased pass@k estimator of Chen et al. (2021): with n samples of which c are correct,
/// pass@k = 1 − C(n−c, k) / C(n, k). The ratio of binomials is evaluated as the product
/// ∏_{i=n−c+1}^{n} (1 − k/i), which never forms a large binomial and so neither overflows nor
/// loses precision to cancellation.
/// </summary>
public static class PassAtK
{
    public static double Estimate(int n, int c, int k)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "n must be ≥ 1");
        if (c < 0 || c > n) throw new ArgumentOutOfRangeException(nameof(c), c, $"c must be in [0, {n}]");
        if (k < 1 || k > n) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be in [1, {n}]");
        // Fewer than k failures: every k-subset contains a correct sample.
        if (n - c < k) return 1.0;
        double failAll = 1.0;
        for (int i = n - c + 1; i <= n; i++)
            failAll *= 1.0 - (double)k / i;
        return 1.0 - failAll;
    }

    /// <summary>Mean of <see cref="Estimate"/> over problems, each with n samples and its own correct count.</summary>
    public static double Mean(IReadOnlyList<int> correctCounts, int n, int k) =>
        correctCounts.Count == 0 ? double.NaN : correctCounts.Average(c => Estimate(n, c, k));
}

using EmaPg.Divergences;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Studies;

/// <summary>The grid and Monte-Carlo settings of the Top-k variance study (App. G).</summary>
public sealed record TopkVarianceConfig
{
    public int Vocab { get; init; } = 32000;
    public IReadOnlyList<double> Masses { get; init; } = [0.2, 0.5, 0.8, 0.9];
    public IReadOnlyList<int> Ks { get; init; } = [4, 8, 16, 32, 64, 128, 256];
    public IReadOnlyList<int> Batches { get; init; } = Enumerable.Range(0, 16).Select(i => 1 << i).ToList();
    public int Tasks { get; init; } = 8;
    public int Seed { get; init; } = 0;
    /// <summary>
    /// Target relative standard error of a reported (task-averaged) rel_rmse. Each task's Monte-Carlo RMSE runs
    /// repetitions, doubling, until its own relative standard error is below this × √tasks, so the average of
    /// the tasks meets this target; 0.05 keeps the 95% interval of each reported value within ±10%.
    /// </summary>
    public double McRelativeError { get; init; } = 0.05;
    public double TaskRelativeError => McRelativeError * Math.Sqrt(Tasks);
    public int MinReps { get; init; } = 8;
    /// <summary>Expected number of tail tokens (draws outside q) a Top-k cell must see before its spread is trusted.</summary>
    public double MinTailDraws { get; init; } = 20;
    public int MaxReps { get; init; } = 4096;
    /// <summary>Cap on the elements of one forward/backward ([R, V] leaf, [rows, k] gathers); bounds memory.</summary>
    public long ChunkElements { get; init; } = 1 << 22;
    public IReadOnlyList<VarianceEstimator> Estimators { get; init; } = VarianceEstimator.All;
    /// <summary>
    /// Estimator options. The log-ratio clamp is lifted to its maximum (700) so that no clamping bias enters the
    /// comparison with the exact gradient (on-policy s = 1, so nothing is exponentiated that could overflow).
    /// </summary>
    public EstimatorOptions Options { get; init; } = new() { LogRatioClamp = 700 };
    public string DeviceName { get; init; } = "cpu";
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>A tiny grid for the test suite (a few seconds).</summary>
    public static TopkVarianceConfig Quick { get; } = new()
    {
        Vocab = 1000, Masses = [0.5, 0.9], Ks = [4, 32], Batches = [1, 16, 256], Tasks = 2, MaxReps = 256, McRelativeError = 0.1,
    };
}

using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>
/// Global advantage normalisation (App. B, as in PPO / REINFORCE++): A = R − V(x) with the group mean as
/// baseline, then a z-score over the flattened B×N batch, replacing the per-prompt std division.
/// </summary>
public static class GlobalAdvantageNormalization
{
    public static Tensor Compute(Tensor rewards, int groupSize, double eps = 1e-6)
    {
        var a = GroupAdvantage.Compute(rewards, groupSize, divideByStd: false);
        return (a - a.mean()) / (a.std(unbiased: true) + eps);
    }
}

using static TorchSharp.torch;

namespace EmaPg.Objectives;

/// <summary>
/// GRPO group advantages (App. A): A = R − V(x), V(x) the group mean over the N responses to one prompt,
/// divided by the group's std with the N − 1 denominator (J = E[J^clip(x)/std(x)]). A group whose
/// rewards are all equal carries no signal and gets A = 0 (its std is 0; ε only avoids 0/0).
/// </summary>
public static class GroupAdvantage
{
    /// <param name="rewards">[B·N] rewards, grouped consecutively by prompt.</param>
    /// <param name="groupSize">N, responses per prompt (≥ 2 for the N − 1 std).</param>
    public static Tensor Compute(Tensor rewards, int groupSize, bool divideByStd = true, double eps = 1e-6)
    {
        if (groupSize < 2) throw new ArgumentException("group advantages need at least 2 responses per prompt (std uses N − 1).");
        if (rewards.shape[0] % groupSize != 0) throw new ArgumentException($"{rewards.shape[0]} rewards do not split into groups of {groupSize}.");
        var g = rewards.reshape(-1, groupSize);
        var a = g - g.mean([1], keepdim: true);
        if (divideByStd) a = a / (g.std(1, unbiased: true, keepdim: true) + eps);
        return a.reshape(-1);
    }
}

using EmaPg.Data;
using EmaPg.Rewards.Math;

namespace EmaPg.Rewards;

/// <summary>DeepScaleR/verl math reward: 1 when the last \boxed{} answer equals any ground truth (<see cref="MathGrader"/>), else 0.</summary>
public sealed class MathReward : IReward
{
    public double Score(string response, PromptExample example) => MathGrader.IsCorrect(response, example.GroundTruths) ? 1.0 : 0.0;
}

using EmaPg.Data;
using EmaPg.Tasks;

namespace EmaPg.Rewards;

/// <summary>
/// The embedded arithmetic task's reward on decoded text: the response, encoded with the task's tokenizer and
/// ended by EOS, is scored by <see cref="ArithmeticTask.Reward"/> (exactly the answer's digits → 1, else 0).
/// Characters outside the task's alphabet make the response malformed: 0.
/// </summary>
public sealed class ArithmeticReward(ArithmeticTask? task = null) : IReward
{
    private readonly ArithmeticTask _task = task ?? new ArithmeticTask();

    public double Score(string response, PromptExample example)
    {
        int[] ids;
        try { ids = [.. _task.Chars.Encode(response), _task.Chars.EosId]; }
        catch (ArgumentException) { return 0.0; }
        foreach (var truth in example.GroundTruths)
            if (_task.Reward(new Problem("", truth, truth), ids) == 1.0) return 1.0;
        return 0.0;
    }
}

using static TorchSharp.torch;

namespace EmaPg.Sampling;

/// <summary>
/// Prompts of different lengths packed into one tensor with LEFT padding: every row's last prompt
/// token sits in the same column, so the first generated token of all rows is predicted from the
/// same position and generation appends one column per step. The model derives position ids from
/// the mask, so padding does not shift positions.
/// </summary>
public static class PromptBatch
{
    /// <summary>(ids [B,Lp] int64, mask [B,Lp] int64 with 1 = real token) on <paramref name="device"/>.</summary>
    public static (Tensor Ids, Tensor Mask) LeftPad(IReadOnlyList<int[]> prompts, int padId, Device device)
    {
        if (prompts.Count == 0) throw new ArgumentException("need at least one prompt", nameof(prompts));
        int width = prompts.Max(p => p.Length);
        if (width == 0) throw new ArgumentException("prompts must not be empty (start them with BOS)", nameof(prompts));
        var ids = new long[prompts.Count * width];
        var mask = new long[prompts.Count * width];
        for (int b = 0; b < prompts.Count; b++)
        {
            int offset = width - prompts[b].Length;
            for (int j = 0; j < width; j++)
            {
                bool real = j >= offset;
                ids[b * width + j] = real ? prompts[b][j - offset] : padId;
                mask[b * width + j] = real ? 1 : 0;
            }
        }
        return (tensor(ids, [prompts.Count, width], device: device), tensor(mask, [prompts.Count, width], device: device));
    }

    /// <summary>
    /// Responses [B,L] right-padded with <paramref name="padId"/> and a float mask that is 1 on real
    /// tokens; the layout <see cref="Sampler.Generate"/> returns, used to score reference answers
    /// (supervised cold start) with the same code as sampled ones.
    /// </summary>
    public static (Tensor Ids, Tensor Mask) RightPad(IReadOnlyList<int[]> responses, int padId, Device device)
    {
        if (responses.Count == 0) throw new ArgumentException("need at least one response", nameof(responses));
        int width = Math.Max(1, responses.Max(p => p.Length));
        var ids = new long[responses.Count * width];
        var mask = new float[responses.Count * width];
        for (int b = 0; b < responses.Count; b++)
            for (int j = 0; j < width; j++)
            {
                bool real = j < responses[b].Length;
                ids[b * width + j] = real ? responses[b][j] : padId;
                mask[b * width + j] = real ? 1f : 0f;
            }
        return (tensor(ids, [responses.Count, width], device: device), tensor(mask, [responses.Count, width], device: device));
    }
}

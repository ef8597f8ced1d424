using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using EmaPg.Model;
using EmaPg.Optim;
using EmaPg.Sampling;
using EmaPg.Tasks;
using EmaPg.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Training;

/// <summary>Outcome of <see cref="ColdStart.Run"/>; the caller owns (and disposes) <see cref="Model"/>.</summary>
public sealed record ColdStartResult(CausalLM Model, string CheckpointPath, bool FromCache, double TrainSeconds, double FinalLoss);

/// <summary>
/// Supervised cold start: cross-entropy on reference solutions (response tokens only, EOS
/// included), producing the base policy that RL starts from. The checkpoint is cached under a key
/// that hashes everything that determines it, so every RL run with the same settings starts from
/// the identical base model without paying for SFT again.
/// </summary>
public static class ColdStart
{
    /// <summary>Bumped whenever the training procedure changes in a way the configs do not capture.</summary>
    private const string ProcedureVersion = "coldstart/v1";

    public static string CacheKey(ModelConfig model, ITask task, ColdStartConfig sft)
    {
        var text = string.Join("\n", ProcedureVersion, model.Validate().ToJson(), task.Fingerprint, sft.Validate().ToJson());
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
    }

    /// <summary>
    /// Returns the cached base model for these settings, or trains and caches it. With
    /// <paramref name="cacheDir"/> null nothing is read or written. <paramref name="modelConfig"/>'s
    /// vocabulary must match the task's tokenizer.
    /// </summary>
    public static ColdStartResult Run(ModelConfig modelConfig, ITask task, ColdStartConfig sft, string? cacheDir = "runs/.cache",
        Device? device = null, Action<string>? log = null)
    {
        // A padded vocabulary (ids the tokenizer never produces) is allowed, as in real LLMs.
        if (modelConfig.VocabSize < task.Tokenizer.VocabSize)
            throw new Common.UserError($"vocab_size must be ≥ the task tokenizer's {task.Tokenizer.VocabSize}, got {modelConfig.VocabSize}.");
        var key = CacheKey(modelConfig, task, sft);
        string path = cacheDir is null ? "" : Path.Combine(cacheDir, $"coldstart-{key}.ckpt");
        if (cacheDir is not null && File.Exists(path))
        {
            try
            {
                var (_, meta) = Checkpoint.ReadHeader(path);
                var cached = Checkpoint.Load(path, device);
                log?.Invoke($"cold start: reusing {path}");
                return new ColdStartResult(cached, path, true, ParseOr(meta, "train_seconds"), ParseOr(meta, "final_loss"));
            }
            catch (Common.UserError e)
            {
                // The cache is derived data: a damaged entry is rebuilt (and replaced atomically), never a reason to fail every later run.
                log?.Invoke($"warning: cold-start cache {path} is unusable ({e.Message}); training it again.");
            }
        }

        var model = new DecoderLM(modelConfig, device, ScalarType.Float32, seed: sft.Seed);
        var (seconds, loss) = Train(model, task, sft, log);
        if (cacheDir is not null)
        {
            Checkpoint.Save(path, model, new Dictionary<string, string>
            {
                ["kind"] = "coldstart",
                ["key"] = key,
                ["task"] = task.Fingerprint,
                ["sft"] = sft.ToJson(),
                ["train_seconds"] = seconds.ToString("R", CultureInfo.InvariantCulture),
                ["final_loss"] = loss.ToString("R", CultureInfo.InvariantCulture),
            });
            log?.Invoke($"cold start: saved {path}");
        }
        return new ColdStartResult(model, path, false, seconds, loss);
    }

    /// <summary>Runs the SFT loop on <paramref name="model"/> in place; returns (seconds, mean loss of the last 10% of steps).</summary>
    public static (double Seconds, double FinalLoss) Train(CausalLM model, ITask task, ColdStartConfig sft, Action<string>? log = null)
    {
        sft.Validate();
        var rng = new Random(sft.Seed);
        var tok = task.Tokenizer;
        using var opt = new AdamW(model.parameters(), sft.LearningRate, sft.Beta1, sft.Beta2, 1e-8, sft.WeightDecay);
        model.train();
        var sw = Stopwatch.StartNew();
        int tail = Math.Max(1, sft.Steps / 10);
        double tailSum = 0;
        for (int step = 0; step < sft.Steps; step++)
        {
            using var scope = NewDisposeScope();
            opt.LearningRate = sft.RateAt(step);
            var problems = Enumerable.Range(0, sft.BatchSize).Select(_ => task.SampleTrain(rng)).ToList();
            var (pIds, pMask) = PromptBatch.LeftPad(problems.Select(task.EncodePrompt).ToList(), tok.PaddingId(), model.Device);
            var (rIds, rMask) = PromptBatch.RightPad(problems.Select(task.EncodeSolution).ToList(), tok.PaddingId(), model.Device);
            var seq = cat([pIds, rIds], 1);
            var attn = cat([pMask, ones_like(rIds)], 1);
            var mask = rMask.to_type(ScalarType.Float32);
            // Demonstrations with observations: only the model's own tokens carry the supervised loss.
            if (task is IMaskedSolutions masked) mask = RightPadMasks(problems.Select(masked.SolutionLossMask).ToList(), rIds.shape[1], model.Device);
            Tensor loss;
            if (model.Config.VocabSize >= ConfigSchema.FusedHeadAutoVocab)
            {
                // Real vocabularies: the token-mean NLL straight from hidden states in three GEMMs, never a [B, L, |V|] tensor.
                var weights = (mask / mask.sum()).reshape(-1);
                (loss, _) = Scorer.FusedLoss(model, seq, attn, pIds.shape[1], (rows, start, count) => -(rows.LogpTarget * weights.narrow(0, start, count)).sum());
            }
            else
            {
                var score = Scorer.Score(model, seq, attn, pIds.shape[1]);   // its tensors live in the step's scope
                loss = -(score.LogProbs * mask).sum() / mask.sum();
            }
            opt.ZeroGrad();
            loss.backward();
            if (sft.GradClip > 0) nn.utils.clip_grad_norm_(model.parameters(), sft.GradClip);
            opt.Step();
            double l = loss.to_type(ScalarType.Float64).item<double>();
            if (step >= sft.Steps - tail) tailSum += l;
            if (log is not null && (step % 50 == 0 || step == sft.Steps - 1))
                log($"cold start: step {step + 1}/{sft.Steps} loss {l:F4} ({sw.Elapsed.TotalSeconds:F1}s)");
        }
        model.eval();
        return (sw.Elapsed.TotalSeconds, sft.Steps == 0 ? double.NaN : tailSum / Math.Min(tail, sft.Steps));
    }

    /// <summary>[B, width] float32 of per-token masks, zero-padded on the right.</summary>
    private static Tensor RightPadMasks(IReadOnlyList<float[]> masks, long width, Device device)
    {
        var data = new float[masks.Count * width];
        for (int i = 0; i < masks.Count; i++) masks[i].CopyTo(data, i * width);
        return tensor(data, [masks.Count, width], device: device);
    }

    private static double ParseOr(IReadOnlyDictionary<string, string> meta, string key) =>
        meta.TryGetValue(key, out var s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN;
}

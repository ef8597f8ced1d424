using EmaPg.Common;
using EmaPg.Eval;
using EmaPg.Model;
using EmaPg.Model.HuggingFace;
using static TorchSharp.torch;

namespace EmaPg.Training;

/// <summary>What <see cref="ModelJobs.Evaluate"/> measured, and on what.</summary>
public sealed record ModelEvalReport(EvalResult Result, string Subject, string Task, int? Iteration);

/// <summary>What <see cref="ModelJobs.FineTune"/> did.</summary>
public sealed record SftReport(string OutDir, int Steps, double FinalLoss, double Seconds, long Parameters);

/// <summary>
/// The jobs on one model besides RL: evaluating a run's policy or a Hugging Face folder on any task, and supervised
/// fine-tuning of a folder on a dataset's reference responses. Both read their task from a <see cref="TrainConfig"/>,
/// so a dataset means the same rows, prompts and reward as in `emapg train`.
/// </summary>
public static class ModelJobs
{
    /// <summary>
    /// pass@k of <paramref name="runDir"/>'s latest checkpointed policy (on its own task, or the one <paramref name="config"/>
    /// names) or of the folder <see cref="TrainConfig.Model"/>.
    /// </summary>
    public static ModelEvalReport Evaluate(string? runDir, TrainConfig config, EvalOptions options, Action<string>? warn = null)
    {
        ConfigSchema.CrossValidate(config);
        if (config.Threads > 0) set_num_threads(config.Threads);
        using var inputs = RunInputs.Create(config);
        var device = TrainRun.MakeDevice(config);
        using var model = inputs.CreatePolicy(device, config.Seed);
        int? iteration = null;
        if (runDir is not null)
        {
            var into = model.named_parameters().ToDictionary(p => "policy/" + p.name, p => (Tensor)p.parameter);
            iteration = RunDirectory.LoadLatestCheckpoint(runDir, p => TrainerCheckpoint.Load(p, into, requireAll: false), warn).Iteration;
        }
        var result = Evaluator.Evaluate(model, inputs.Task, options);
        if (inputs.Reward?.Report() is { Failures: > 0 } failures) warn?.Invoke($"warning: {failures}");
        return new ModelEvalReport(result, runDir ?? config.Model, TaskLabel(config), iteration);
    }

    /// <summary>
    /// Supervised fine-tuning of the folder <see cref="TrainConfig.Model"/> on the reference responses of
    /// <see cref="TrainConfig.Data"/> (the sft_* keys: steps, batch, learning rate), written as a new folder.
    /// </summary>
    public static SftReport FineTune(TrainConfig config, string outDir, Action<string>? log = null)
    {
        if (config.Model.Length == 0) throw new UserError("sft needs --model, the Hugging Face folder to fine-tune.");
        if (File.Exists(Path.Combine(outDir, HfCheckpoint.ConfigFile)))
            throw new UserError($"--out '{outDir}' already holds a model (config.json); choose an empty or new folder.");
        ConfigSchema.CrossValidate(config);
        var sft = TrainRun.MakeSftConfig(config).Validate();
        if (config.Threads > 0) set_num_threads(config.Threads);
        manual_seed(config.Seed);
        using var inputs = RunInputs.Create(config);
        foreach (var report in inputs.DataReports.Take(1)) log?.Invoke(report.ToString());
        using var model = inputs.CreatePolicy(TrainRun.MakeDevice(config), config.Seed);
        var (seconds, loss) = ColdStart.Train(model, inputs.Task, sft, log);
        // Written beside the target and renamed into place, so an interrupted run never leaves a half-written model folder.
        var fresh = outDir.TrimEnd('/', Path.DirectorySeparatorChar) + ".partial";
        if (Directory.Exists(fresh)) Directory.Delete(fresh, recursive: true);
        HfCheckpoint.Save(model, inputs.ModelConfig, fresh, inputs.TokenizerDir);
        if (Directory.Exists(outDir))
        {
            if (Directory.EnumerateFileSystemEntries(outDir).Any()) throw new UserError($"--out '{outDir}' is not empty.");
            Directory.Delete(outDir);
        }
        Directory.Move(fresh, outDir);
        return new SftReport(outDir, sft.Steps, loss, seconds, model.ParameterCount);
    }

    private static string TaskLabel(TrainConfig c) => ConfigSchema.ResolvedTask(c) switch
    {
        "dataset" => Path.GetFileName(c.EvalData),
        var t => t,
    };
}

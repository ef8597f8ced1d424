using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Training;

/// <summary>What a resumed run needs besides tensors: where it was and the counters it had accumulated.</summary>
public sealed record TrainerState
{
    public int Iteration { get; init; }
    public double BasePass1 { get; init; } = double.NaN;
    public double BasePassK { get; init; } = double.NaN;
    public long SkippedSteps { get; init; }
    public long SampleTokens { get; init; }
    public double SampleSeconds { get; init; }
    public long TrainTokens { get; init; }
    public double TrainSeconds { get; init; }
    public double WallSeconds { get; init; }
    public long OptimizerSteps { get; init; }
    public long RolledBackSteps { get; init; }
}

/// <summary>
/// A run's state in the library's checksummed tensor format (<see cref="TensorFile"/>, kind
/// "trainer-checkpoint"): trainer counters in the header, policy, anchor and optimiser tensors by name.
/// Rotation (keeping the previous checkpoint until the new one is verified) is <see cref="RunDirectory"/>'s job.
/// </summary>
public static class TrainerCheckpoint
{
    public const string Kind = "trainer-checkpoint";
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static void Save(string path, TrainerState state, IEnumerable<(string Name, Tensor Tensor)> tensors) =>
        TensorFile.Write(path, Kind, new JsonObject { ["state"] = JsonSerializer.SerializeToNode(state, Json) }, tensors);

    /// <summary>Verifies the file, then copies every stored tensor into the tensor of the same name, in place.</summary>
    public static TrainerState Load(string path, IReadOnlyDictionary<string, Tensor> into, bool requireAll = true)
    {
        using var r = TensorFile.Open(path, Kind);
        TrainerState state;
        try { state = r.Metadata["state"].Deserialize<TrainerState>(Json) ?? throw new JsonException("null state"); }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException)
        {
            throw new CorruptFileError(path, $"no trainer state in the header ({e.Message})");
        }
        var unexpected = r.Tensors.Keys.Where(k => !into.ContainsKey(k)).ToList();
        if (requireAll && unexpected.Count > 0) throw new UserError($"'{path}': tensor '{unexpected[0]}' does not belong to this run's model.");
        var missing = into.Keys.Where(k => !r.Tensors.ContainsKey(k)).ToList();
        if (missing.Count > 0 && (requireAll || missing.Count == into.Count)) throw new UserError($"'{path}' lacks {missing.Count} tensors, e.g. '{missing[0]}'.");
        foreach (var (name, target) in into)
            if (r.Tensors.ContainsKey(name)) r.ReadInto(name, target);
        return state;
    }
}

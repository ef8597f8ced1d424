using System.Text;
using System.Text.Json;
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
}

/// <summary>
/// One file holding a run's state: trainer counters (JSON header) and named float32 tensors (policy,
/// anchor, optimiser moments). Written to a temporary file and renamed over the old one, so a kill -9 at
/// any moment leaves either the previous checkpoint or the new one, never a torn file.
/// </summary>
public static class TrainerCheckpoint
{
    private const string Magic = "EMAPG-TRAIN-v1";

    public static void Save(string path, TrainerState state, IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        var tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        using (var w = new BinaryWriter(fs, Encoding.UTF8))
        {
            w.Write(Magic);
            w.Write(JsonSerializer.Serialize(state));
            var list = tensors.ToList();
            w.Write(list.Count);
            foreach (var (name, t) in list)
            {
                using var c = t.detach().to(CPU).to_type(ScalarType.Float32).contiguous();
                w.Write(name);
                w.Write(c.shape.Length);
                foreach (var d in c.shape) w.Write(d);
                var data = c.data<float>().ToArray();
                var bytes = new byte[data.Length * 4];
                Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
                w.Write(bytes);
            }
            w.Flush();
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Reads the state and copies every stored tensor into the tensor of the same name, in place.</summary>
    public static TrainerState Load(string path, IReadOnlyDictionary<string, Tensor> into, bool requireAll = true)
    {
        if (!File.Exists(path)) throw new UserError($"no checkpoint at '{path}'.");
        using var fs = File.OpenRead(path);
        using var r = new BinaryReader(fs, Encoding.UTF8);
        if (r.ReadString() != Magic) throw new UserError($"'{path}' is not an EmaPg training checkpoint.");
        var state = JsonSerializer.Deserialize<TrainerState>(r.ReadString()) ?? throw new UserError($"'{path}': empty state.");
        int n = r.ReadInt32();
        var seen = new HashSet<string>();
        using var noGrad = no_grad();
        for (int i = 0; i < n; i++)
        {
            var name = r.ReadString();
            var shape = new long[r.ReadInt32()];
            for (int d = 0; d < shape.Length; d++) shape[d] = r.ReadInt64();
            long count = shape.Aggregate(1L, (a, b) => a * b);
            var bytes = r.ReadBytes(checked((int)(count * 4)));
            if (!into.TryGetValue(name, out var target))
            {
                if (requireAll) throw new UserError($"'{path}': tensor '{name}' does not belong to this run's model.");
                continue;
            }
            if (!target.shape.SequenceEqual(shape)) throw new UserError($"'{path}': tensor '{name}' has shape [{string.Join(",", shape)}], the model expects [{string.Join(",", target.shape)}].");
            var data = new float[count];
            Buffer.BlockCopy(bytes, 0, data, 0, bytes.Length);
            using var src = tensor(data, shape);
            target.copy_(src);
            seen.Add(name);
        }
        var missing = into.Keys.Where(k => !seen.Contains(k)).ToList();
        if (missing.Count > 0 && (requireAll || seen.Count == 0)) throw new UserError($"'{path}' lacks {missing.Count} tensors, e.g. '{missing[0]}'.");
        return state;
    }
}

using EmaPg.Common;
using EmaPg.Model;
using static TorchSharp.torch;

namespace EmaPg.Tests.Model;

public class CheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emapg-ckpt-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void RoundTripRestoresEveryParameterAndTheConfig()
    {
        using var model = TinyModels.Float64(tied: false, seed: 3);
        var path = Path.Combine(_dir, "sub", "m.ckpt");
        Checkpoint.Save(path, model, new Dictionary<string, string> { ["note"] = "x" });
        Assert.Equal(new[] { "m.ckpt" }, Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));

        var (config, meta) = Checkpoint.ReadHeader(path);
        Assert.Equal(model.Config, config);
        Assert.Equal("x", meta["note"]);

        using var loaded = Checkpoint.Load(path, CPU, ScalarType.Float64);
        var a = model.named_parameters().ToList();
        var b = loaded.named_parameters().ToList();
        Assert.Equal(a.Select(x => x.name), b.Select(x => x.name));
        Assert.All(a.Zip(b), t => Assert.True(TinyModels.Same(t.First.parameter, t.Second.parameter), t.First.name));
    }

    [Fact]
    public void LoadingIntoADifferentModelIsAUserError()
    {
        using var model = TinyModels.Float64(tied: true);
        var path = Path.Combine(_dir, "m.ckpt");
        Checkpoint.Save(path, model);
        using var other = TinyModels.Float64(tied: false);
        Assert.Throws<UserError>(() => Checkpoint.LoadInto(other, path));
        File.WriteAllText(Path.Combine(_dir, "junk"), "not a checkpoint");
        Assert.ThrowsAny<UserError>(() => Checkpoint.Load(Path.Combine(_dir, "junk")));
    }
}

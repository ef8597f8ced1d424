using System.Runtime.InteropServices;
using EmaPg.Common;

namespace EmaPg.Tests.Common;

/// <summary>The heap setting's override is validated; its effect on memory is measured by `bench train-step`, not here.</summary>
public class NativeHeapTests
{
    [Theory]
    [InlineData("-5")]
    [InlineData("lots")]
    public void ABadOverrideIsAUserErrorNamingTheVariable(string value)
    {
        var e = Assert.Throws<UserError>(() => NativeHeap.Configure(value));
        Assert.Contains(NativeHeap.Variable, e.Message);
    }

    [Fact]
    public void ZeroLeavesGlibcsDefaultAndOtherwiseTheThresholdIsSetOnLinux()
    {
        Assert.Null(NativeHeap.Configure("0"));
        Assert.Equal(OperatingSystem.IsLinux() ? 2097152 : null, NativeHeap.Configure("2097152"));
        Assert.Equal(OperatingSystem.IsLinux() ? NativeHeap.DefaultMmapThreshold : null, NativeHeap.Configure(null));
    }

    [DllImport("libc", EntryPoint = "getenv")]
    private static extern IntPtr GetEnv(string name);

    /// <summary>libtorch reads the C environment, not .NET's copy: the request must be visible to getenv.</summary>
    [Fact]
    public void HugePagesAreRequestedInTheCEnvironmentUnlessTheUserChose()
    {
        if (!OperatingSystem.IsLinux()) return;
        string? before = Environment.GetEnvironmentVariable(NativeHeap.HugePagesVariable);
        bool requested = NativeHeap.RequestHugePages();
        string? native = Marshal.PtrToStringAnsi(GetEnv(NativeHeap.HugePagesVariable));
        if (before is null)
        {
            Assert.True(requested);
            Assert.Equal("1", native);
        }
        else
        {
            Assert.Equal(before, native);
            Assert.Equal(before.Trim() == "1", requested);
        }
    }
}

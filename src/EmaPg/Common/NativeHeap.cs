using System.Runtime.InteropServices;

namespace EmaPg.Common;

/// <summary>
/// glibc's heap policy for the process. libtorch's CPU allocator does not cache, so every tensor is a malloc/free; glibc
/// serves blocks below its mmap threshold from its heap, and that threshold grows dynamically (up to 32 MiB) each time a
/// large block is freed. Freed heap blocks stay resident, so a training step's transient 1–32 MiB tensors (per-layer
/// activations, chunk buffers) pile up as resident memory the step no longer uses (measured with `bench train-step` at
/// 512 tokens: 1.52 → 0.83 GiB above the static state with a fixed 1 MiB threshold). A fixed threshold sends every block of
/// at least that size to mmap, returned to the kernel on free. Small tensors, the embedded jobs' all, are unaffected.
/// <para>
/// Memory handed back to the kernel must be faulted in again, page by page, when the next tensor takes it, and in a VM a
/// fault is expensive: at a 151,936-token vocabulary one decoding step of 64 rows allocates several [64, |V|] tables,
/// and faulting their 4 KiB pages was most of a step (measured in a Firecracker VM: exp of a [64, 151936] table 157 ms,
/// 23 ms with huge pages). libtorch (≥ 2.3) backs allocations of 2 MiB and more with transparent huge pages when
/// THP_MEM_ALLOC_ENABLE=1 (madvise), 512 times fewer faults; <see cref="Configure"/> sets it unless the user has.
/// </para>
/// </summary>
public static class NativeHeap
{
    /// <summary>The threshold the CLI sets: 1 MiB.</summary>
    public const int DefaultMmapThreshold = 1 << 20;

    /// <summary>Environment variable overriding the threshold in bytes; 0 leaves glibc's dynamic default.</summary>
    public const string Variable = "EMAPG_MMAP_THRESHOLD";

    /// <summary>libtorch's switch for transparent-huge-page backing of large CPU tensors; read once, at its first allocation.</summary>
    public const string HugePagesVariable = "THP_MEM_ALLOC_ENABLE";

    private const int MMmapThreshold = -3;   // M_MMAP_THRESHOLD in malloc.h

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int param, int value);

    // Environment.SetEnvironmentVariable changes only .NET's copy; libtorch reads the C environment.
    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv(string name, string value, int overwrite);

    /// <summary>
    /// Asks libtorch for huge-page-backed large tensors (<see cref="HugePagesVariable"/> = 1) unless the environment already
    /// sets it (0 turns it off). Must run before the first tensor is allocated; returns whether huge pages are requested.
    /// </summary>
    public static bool RequestHugePages()
    {
        string? existing = Environment.GetEnvironmentVariable(HugePagesVariable);
        if (existing is not null) return existing.Trim() == "1";
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return SetEnv(HugePagesVariable, "1", 0) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>
    /// Applies the threshold (<paramref name="text"/>, the value of <see cref="Variable"/>, else <see cref="DefaultMmapThreshold"/>) on
    /// Linux with glibc; returns it, or null where nothing was set.
    /// </summary>
    public static int? Configure(string? text)
    {
        int threshold = DefaultMmapThreshold;
        if (!string.IsNullOrWhiteSpace(text) && (!int.TryParse(text, out threshold) || threshold < 0))
            throw new UserError($"{Variable} must be a number of bytes ≥ 0 (0 = glibc's default), got '{text}'.");
        if (threshold == 0 || !OperatingSystem.IsLinux()) return null;
        try
        {
            return Mallopt(MMmapThreshold, threshold) == 1 ? threshold : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;   // not glibc (e.g. musl): its allocator has no such knob
        }
    }
}

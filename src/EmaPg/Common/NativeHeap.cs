using System.Runtime.InteropServices;

namespace EmaPg.Common;

/// <summary>
/// glibc's heap policy for the process. libtorch's CPU allocator does not cache, so every tensor is a malloc/free; glibc
/// serves blocks below its mmap threshold from its heap, and that threshold grows dynamically (up to 32 MiB) each time a
/// large block is freed. Freed heap blocks stay resident, so a training step's transient 1–32 MiB tensors (per-layer
/// activations, chunk buffers) pile up as resident memory the step no longer uses (measured with `bench train-step` at
/// 512 tokens: 1.52 → 0.83 GiB above the static state with a fixed 1 MiB threshold). A fixed threshold sends every block of
/// at least that size to mmap, returned to the kernel on free. Small tensors, the embedded jobs' all, are unaffected.
/// </summary>
public static class NativeHeap
{
    /// <summary>The threshold the CLI sets: 1 MiB.</summary>
    public const int DefaultMmapThreshold = 1 << 20;

    /// <summary>Environment variable overriding the threshold in bytes; 0 leaves glibc's dynamic default.</summary>
    public const string Variable = "EMAPG_MMAP_THRESHOLD";

    private const int MMmapThreshold = -3;   // M_MMAP_THRESHOLD in malloc.h

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int param, int value);

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

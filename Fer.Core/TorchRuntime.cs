using System.Runtime.InteropServices;

namespace Fer.Core;

/// <summary>
/// Process-wide settings Fer needs from libtorch, applied once at start-up (the CLI, the benchmarks, the test hosts).
///
/// Threads: libtorch 2.10 on CPU computes WRONG input gradients for batched convolutions when it runs with a single
/// intra-op thread (measured: the gradient of image 0 of a batch of 2 through one conv+ReLU summed to 53.4, against
/// 119.7 alone and 119.3 by finite differences; with 2 threads all three agree). Saliency, Grad-CAM and filter
/// ascent differentiate with respect to the input, so Fer never lets libtorch run with fewer than 2 threads.
///
/// Memory: glibc malloc settings for tensor work. libtorch frees and re-allocates activations of tens of megabytes every
/// step; above glibc's mmap threshold each one is a fresh mmap whose pages all fault in again, which made a
/// 64-image gradient step 4x slower than with the memory kept in the heap (measured: 491 ms against 110 ms for
/// max_pooling2d_1 of the seed CNN). Raising the mmap threshold to its maximum and never trimming the heap keeps
/// those pages mapped. A no-op off Linux or where mallopt is unavailable.
/// </summary>
public static class TorchRuntime
{
    private const int M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3;
    private static int _applied;

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    /// <summary>Applies the settings once per process.</summary>
    public static void Configure()
    {
        if (Interlocked.Exchange(ref _applied, 1) == 1) return;
        if (TorchSharp.torch.get_num_threads() < 2) TorchSharp.torch.set_num_threads(2);
        TuneMalloc();
    }

    /// <summary>Returns whether the malloc settings took effect.</summary>
    private static bool TuneMalloc()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return MallOpt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1 & MallOpt(M_TRIM_THRESHOLD, int.MaxValue) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }
}

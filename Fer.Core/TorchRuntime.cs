using System.Runtime.InteropServices;

namespace Fer.Core;

/// <summary>Which kernels compute CPU convolutions (see <see cref="TorchRuntime.CpuConvolutions"/>).</summary>
public enum ConvolutionKernels
{
    /// <summary>libtorch's default for CPU convolutions: oneDNN, fast, with wrong input gradients for narrow shapes.</summary>
    Default,
    /// <summary>libtorch's own kernels: slower, exact.</summary>
    Native,
}

/// <summary>
/// Process-wide settings Fer needs from libtorch, applied once at start-up (the CLI, the benchmarks, the test hosts).
///
/// Input gradients: the oneDNN (v3.7.1) convolutions in libtorch 2.10's CPU build compute WRONG input gradients
/// (backward_data) for some batched shapes, e.g. 6 images of 16x16 through a 1->6 or 4->8 3x3 convolution: against a
/// float64 reference they were wrong in 10 of 10 trials with one intra-op thread and in 1-3 of 10 with two (more when
/// two threads call libtorch at once). The forward pass was right in every trial, and so were libtorch's native
/// (non-oneDNN) kernels, in every mode. Over 64 images of 24x24 with one thread, 3x3 convolutions with 2, 3 or 4
/// input and 8 output channels were wrong in 14 of 15 trials; with 4->16, and with 8 or more input channels (8->16 up
/// to 96->128, the seed CNN's shapes), in none. Fer's models therefore never train convolutions that narrow. Explanations differentiate with respect to the input, so they run inside
/// <see cref="NativeCpuConvolutions"/>; training, whose first convolution never needs an input gradient, keeps the
/// faster oneDNN kernels unless a later convolution is narrow (<see cref="ConvolutionsForTraining"/>). Two threads at least are kept too (it made the fault rarer before the scope existed).
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
    private static readonly object KernelGate = new();
    private static int _nativeScopes, _defaultScopes;
    private static bool _oneDnnWasEnabled;
    /// <summary>The kind of the scope this logical flow (thread or async chain) holds, if any.</summary>
    private static readonly AsyncLocal<ConvolutionKernels?> HeldKernels = new();

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    // at::globalContext() and at::Context::{set}userEnabledMkldnn, exported by libtorch_cpu with C++ names.
    // TorchSharp binds no switch for oneDNN; these are plain functions (the member ones take `this` first).
    [DllImport("torch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
    private static extern IntPtr GlobalContext();

    [DllImport("torch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
    private static extern void SetUserEnabledOneDnn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [DllImport("torch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledMkldnnEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static extern bool UserEnabledOneDnn(IntPtr context);

    /// <summary>Applies the settings once per process.</summary>
    public static void Configure()
    {
        if (Interlocked.Exchange(ref _applied, 1) == 1) return;
        if (TorchSharp.torch.get_num_threads() < 2) TorchSharp.torch.set_num_threads(2);
        TuneMalloc();
    }

    /// <summary>Whether libtorch currently routes CPU convolutions to oneDNN; null where the switch cannot be read.</summary>
    public static bool? OneDnnEnabled
    {
        get
        {
            try { return UserEnabledOneDnn(GlobalContext()); }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return null; }
        }
    }

    /// <summary>The narrowest per-group input width of a convolution whose input gradient oneDNN got right in every trial.</summary>
    public const int NarrowestReliableConvolutionInput = 8;

    /// <summary>
    /// The convolutions to train <paramref name="model"/> with: native kernels when a convolution other than the first
    /// reads fewer than <see cref="NarrowestReliableConvolutionInput"/> channels per group, since training
    /// differentiates through its input with oneDNN's faulty backward_data (a 1->4->6 channel test model trained to NaN
    /// weights in 12 of 20 runs with oneDNN, in none of 20 without); otherwise libtorch's default (oneDNN). The first
    /// convolution (in registration order) reads the image, which needs no gradient. Held for the whole fit, so a
    /// training's numbers never depend on what else the process computes meanwhile.
    /// </summary>
    public static IDisposable ConvolutionsForTraining(TorchSharp.torch.nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        bool narrow = model.modules().OfType<TorchSharp.Modules.Conv2d>().Skip(1)
            .Any(conv => conv.weight is { } w && w.shape[1] < NarrowestReliableConvolutionInput);
        return CpuConvolutions(narrow ? ConvolutionKernels.Native : ConvolutionKernels.Default);
    }

    /// <summary>While the returned scope is open, CPU convolutions use libtorch's native kernels (see <see cref="CpuConvolutions"/>).</summary>
    public static IDisposable NativeCpuConvolutions() => CpuConvolutions(ConvolutionKernels.Native);

    /// <summary>
    /// While the returned scope is open, CPU convolutions in this process use <paramref name="kernels"/>. libtorch's
    /// switch is process-wide and the two kinds of kernels round differently, so scopes of the two kinds exclude each
    /// other: a scope waits until every scope of the other kind has closed, and scopes of one kind share (the switch
    /// changes when the first native scope opens and the last closes). Computations inside scopes therefore give the
    /// same numbers whatever runs beside them in the process (two flows in one test process, --parallel). A scope
    /// opened inside another on the same logical flow keeps the outer kind, except that native kernels may never be
    /// asked for inside a default scope: that would silently compute oneDNN's wrong input gradients, so it throws.
    /// Where libtorch lacks the switch the scopes only order the work.
    /// </summary>
    public static IDisposable CpuConvolutions(ConvolutionKernels kernels)
    {
        if (HeldKernels.Value is { } outer)
        {
            if (outer == ConvolutionKernels.Default && kernels == ConvolutionKernels.Native)
                throw new InvalidOperationException("native convolutions (exact input gradients) were asked for inside a scope of oneDNN's; open the native scope first");
            return NestedScope.Instance;
        }
        lock (KernelGate)
        {
            while (kernels == ConvolutionKernels.Native ? _defaultScopes > 0 : _nativeScopes > 0) Monitor.Wait(KernelGate);
            if (kernels == ConvolutionKernels.Native)
            {
                if (_nativeScopes++ == 0)
                {
                    _oneDnnWasEnabled = OneDnnEnabled ?? false;
                    if (_oneDnnWasEnabled) SetUserEnabledOneDnn(GlobalContext(), false);
                }
            }
            else _defaultScopes++;
        }
        HeldKernels.Value = kernels;
        return new KernelScope(kernels);
    }

    private sealed class NestedScope : IDisposable
    {
        public static readonly NestedScope Instance = new();
        public void Dispose() { }
    }

    private sealed class KernelScope(ConvolutionKernels kernels) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
            HeldKernels.Value = null;
            lock (KernelGate)
            {
                if (kernels == ConvolutionKernels.Native)
                {
                    if (--_nativeScopes == 0 && _oneDnnWasEnabled) SetUserEnabledOneDnn(GlobalContext(), true);
                }
                else _defaultScopes--;
                Monitor.PulseAll(KernelGate);
            }
        }
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

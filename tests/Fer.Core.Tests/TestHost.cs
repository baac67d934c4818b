using System.Runtime.CompilerServices;

// Tests run one at a time: a libtorch op called while another thread holds the intra-op pool runs single-threaded,
// and libtorch 2.10's single-threaded batched convolution backward gives wrong input gradients (see TorchRuntime).
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Fer.Core.Tests;

internal static class TestHost
{
    /// <summary>The same libtorch settings as the fer program (at least 2 threads: see TorchRuntime).</summary>
    [ModuleInitializer]
    internal static void ConfigureTorch() => Fer.Core.TorchRuntime.Configure();
}

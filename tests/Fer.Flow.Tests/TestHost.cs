using System.Runtime.CompilerServices;
using TorchSharp;

namespace Fer.Flow.Tests;

internal static class TestHost
{
    /// <summary>
    /// One libtorch thread per test process: `dotnet test Fer.sln` runs both test assemblies at once on a
    /// 2-core machine, and two processes with two OpenMP threads each oversubscribe it many times over.
    /// </summary>
    [ModuleInitializer]
    internal static void LimitTorchThreads()
    {
        torch.set_num_threads(1);
        Fer.Core.NativeMemoryTuning.Apply();
    }
}

using System.Runtime.CompilerServices;

namespace Fer.Flow.Tests;

internal static class TestHost
{
    /// <summary>The same libtorch settings as the fer program (see TorchRuntime).</summary>
    [ModuleInitializer]
    internal static void ConfigureTorch() => Fer.Core.TorchRuntime.Configure();
}

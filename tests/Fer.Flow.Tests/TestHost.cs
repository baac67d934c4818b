using System.Runtime.CompilerServices;

// xunit's order, or a shuffled one with FER_TEST_SHUFFLE_SEED (tests/repeat-suite.sh).
[assembly: TestCaseOrderer("Fer.Tests.Shared.ShuffledTestOrder", "Fer.Flow.Tests")]
[assembly: TestCollectionOrderer("Fer.Tests.Shared.ShuffledTestOrder", "Fer.Flow.Tests")]

namespace Fer.Flow.Tests;

internal static class TestHost
{
    /// <summary>The same libtorch settings as the fer program (see TorchRuntime).</summary>
    [ModuleInitializer]
    internal static void ConfigureTorch() => Fer.Core.TorchRuntime.Configure();
}

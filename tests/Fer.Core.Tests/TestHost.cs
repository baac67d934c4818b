using System.Runtime.CompilerServices;

// Tests run one at a time: each already keeps libtorch's intra-op threads busy, so running them side by side on a
// small machine only adds contention (and made oneDNN's input-gradient fault more frequent, see TorchRuntime).
[assembly: CollectionBehavior(DisableTestParallelization = true)]
// xunit's order, or a shuffled one with FER_TEST_SHUFFLE_SEED (tests/repeat-suite.sh).
[assembly: TestCaseOrderer("Fer.Tests.Shared.ShuffledTestOrder", "Fer.Core.Tests")]
[assembly: TestCollectionOrderer("Fer.Tests.Shared.ShuffledTestOrder", "Fer.Core.Tests")]

namespace Fer.Core.Tests;

internal static class TestHost
{
    /// <summary>The same libtorch settings as the fer program (see TorchRuntime).</summary>
    [ModuleInitializer]
    internal static void ConfigureTorch() => Fer.Core.TorchRuntime.Configure();
}

using Xunit.Abstractions;
using Xunit.Sdk;

namespace Fer.Tests.Shared;

/// <summary>
/// The order tests run in: xunit's own, unless FER_TEST_SHUFFLE_SEED holds a number, in which case the test
/// collections and the test cases within each are shuffled by that seed (tests/repeat-suite.sh sets it for its last
/// run), so a test that depends on another having run first, or on running alone, shows up.
/// </summary>
public sealed class ShuffledTestOrder(IMessageSink diagnostics) : ITestCaseOrderer, ITestCollectionOrderer
{
    public const string SeedVariable = "FER_TEST_SHUFFLE_SEED";

    private readonly DefaultTestCaseOrderer _defaultCases = new(diagnostics);
    private readonly DefaultTestCollectionOrderer _defaultCollections = new();

    private static int? Seed => int.TryParse(Environment.GetEnvironmentVariable(SeedVariable), out var seed) ? seed : null;

    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases) where TTestCase : ITestCase =>
        Seed is { } seed ? Shuffle(testCases.OrderBy(t => t.UniqueID, StringComparer.Ordinal), seed) : _defaultCases.OrderTestCases(testCases);

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        Seed is { } seed ? Shuffle(testCollections.OrderBy(c => c.DisplayName, StringComparer.Ordinal), seed) : _defaultCollections.OrderTestCollections(testCollections);

    private static List<T> Shuffle<T>(IEnumerable<T> items, int seed)
    {
        var list = items.ToList();
        new Random(seed).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list));
        return list;
    }
}

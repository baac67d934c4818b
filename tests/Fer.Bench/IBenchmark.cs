namespace Fer.Bench;

/// <summary>One benchmark of the suite. Program finds every implementation by reflection and runs those named
/// on the command line (all when none is named). Each prints its own figures to the console.</summary>
public interface IBenchmark
{
    /// <summary>Short name used on the command line, e.g. "ingest".</summary>
    string Name { get; }
    string Description { get; }
    /// <summary>Runs the benchmark; <paramref name="quick"/> asks for a smaller size (for smoke runs).</summary>
    void Run(bool quick);
}

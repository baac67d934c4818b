using Fer.Flow.Cache;

namespace Fer.Flow.Pipeline;

/// <summary>
/// A stage of a flow. A stage reads its upstream stages' cache entries and writes its own entry into
/// <see cref="StageContext.OutputDir"/>; files under <c>publish/</c> are copied into each run's folder
/// (figures, metrics.json fragments merged into the run's metrics.json, predictions.csv, report.html).
/// </summary>
public interface IStage
{
    string Name { get; }

    /// <summary>Bump when the stage's output for the same inputs changes: it invalidates old entries.</summary>
    int CodeVersion { get; }

    /// <summary>Stages whose entries this one reads (and whose fingerprints enter its own).</summary>
    IReadOnlyList<string> Upstream { get; }

    IReadOnlyList<StageParameter> Parameters { get; }

    /// <summary>Upstream stages absent from the flow are left out instead of being an error (the report).</summary>
    bool UpstreamOptional => false;

    /// <summary>Recomputed on every run and never cached, because it describes the run itself (the report).</summary>
    bool Volatile => false;

    /// <summary>Settings each ensemble member accepts (train only; empty elsewhere).</summary>
    IReadOnlyList<StageParameter> MemberParameters => [];

    /// <summary>Input files outside the cache whose content enters the fingerprint (ingest's CSV files).</summary>
    IReadOnlyList<string> InputFiles(StageSettings settings) => [];

    Task RunAsync(StageContext context);
}

/// <summary>A stage's completed entry, as downstream stages see it.</summary>
public sealed record StageOutput(string Stage, string Fingerprint, string Dir, StageManifest Manifest, bool CacheHit)
{
    public string PathOf(string file) => Path.Combine(Dir, file);
}

using Fer.Flow.Cache;
using Serilog;

namespace Fer.Flow.Pipeline;

/// <summary>What a stage gets when it runs: its settings, upstream entries, an output folder and the run.</summary>
public sealed class StageContext
{
    public required RunContext Run { get; init; }
    public required string Stage { get; init; }
    public required string Fingerprint { get; init; }
    public required StageSettings Settings { get; init; }
    public required IReadOnlyList<(MemberSpec Spec, StageSettings Settings)> Members { get; init; }
    public required IReadOnlyDictionary<string, StageOutput> Upstream { get; init; }
    /// <summary>The cache entry being written (a temporary folder until the runner commits it).</summary>
    public required string OutputDir { get; init; }
    public required ILogger Log { get; init; }
    public CancellationToken CancellationToken => Run.CancellationToken;

    /// <summary>Files here are copied into the run folder after the stage (and on every later cache hit).</summary>
    public string PublishDir => Path.Combine(OutputDir, "publish");
    public string FiguresDir => Path.Combine(PublishDir, "figures");

    /// <summary>Row counts recorded in the manifest and the log (e.g. train=28709).</summary>
    public SortedDictionary<string, long> Rows { get; } = new(StringComparer.Ordinal);

    /// <summary>Input files read, with their hashes before the stage ran (checked again before commit).</summary>
    public List<ManifestInput> Inputs { get; } = [];

    public StageOutput Input(string stage) => Upstream.TryGetValue(stage, out var o)
        ? o : throw new InvalidOperationException($"stage {Stage} needs the output of stage {stage}, which this flow lacks");

    public string OutputPath(string file)
    {
        var path = Path.Combine(OutputDir, file);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return path;
    }
}

using Fer.Core.Models;
using Fer.Flow.Cache;
using Serilog;

namespace Fer.Flow.Pipeline;

/// <summary>An input a node received: which node made it and its typed output.</summary>
public sealed record Produced<T>(string Node, T Output);

/// <summary>What a stage gets when it runs: its typed inputs, an output folder, a checkpoint folder and the run.</summary>
public sealed class StageContext
{
    public required RunContext Run { get; init; }
    /// <summary>The node's name (ingest, train.cnn, ...).</summary>
    public required string Node { get; init; }
    public required string Fingerprint { get; init; }
    /// <summary>
    /// The outputs of the nodes the planner bound to this node, in port order. Stages receive them as their typed input
    /// (see <see cref="StagePorts"/>); only a stage that implements <see cref="IStageDefinition"/> itself reads them here.
    /// </summary>
    public required IReadOnlyList<Produced<object>> Upstream { get; init; }
    /// <summary>The cache entry being written (a temporary folder until the runner commits it).</summary>
    public required string OutputDir { get; init; }
    /// <summary>A folder that outlives a killed process (for training checkpoints); removed once the node is cached.</summary>
    public required string CheckpointDir { get; init; }
    public required ILogger Log { get; init; }
    public ModelCatalog Models => Run.Flow.Models;
    public CancellationToken CancellationToken => Run.CancellationToken;

    /// <summary>Row counts recorded in the manifest and the log (e.g. train=28709).</summary>
    public SortedDictionary<string, long> Rows { get; } = new(StringComparer.Ordinal);

    /// <summary>Input files read, with their hashes before the stage ran (checked again before commit).</summary>
    public List<ManifestInput> InputFiles { get; } = [];

    public string OutputPath(string file)
    {
        var path = Path.Combine(OutputDir, file);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return path;
    }

    /// <summary>A path under publish/: copied into each run's folder after the stage (and on every later cache hit).</summary>
    public string PublishPath(string file) => OutputPath(Path.Combine("publish", file));

    /// <summary>A figure published as figures/NAME in the run folder.</summary>
    public FigureFile Figure(string name) => new(PublishPath(Path.Combine("figures", name)));
}

using Fer.Flow.Cache;
using Serilog;
using TorchSharp;

namespace Fer.Flow.Pipeline;

/// <summary>One run of a flow: its id and folder, the artifacts cache, the device and the run log.</summary>
public sealed class RunContext
{
    public required string RunId { get; init; }
    public required string RunDir { get; init; }
    public required string ArtifactsDir { get; init; }
    public required FlowDefinition Flow { get; init; }
    public required StageCache Cache { get; init; }
    public required InputFileHasher InputHasher { get; init; }
    public required torch.Device Device { get; init; }
    public required ILogger Log { get; init; }
    public CancellationToken CancellationToken { get; init; }
    /// <summary>Where training, reading and explaining report progress: live on a terminal, plain lines otherwise.</summary>
    public ProgressDisplay Progress { get; init; } = ProgressDisplay.Silent();
    /// <summary>How many nodes may compute at once.</summary>
    public int Parallel { get; init; } = 1;
    /// <summary>False for a cluster job, which computes one node of a run whose metrics.json its coordinator writes.</summary>
    public bool WritesRunMetrics { get; init; } = true;
    /// <summary>The nodes finished so far in this run, in the order they finished.</summary>
    public List<StageReport> Completed { get; } = [];
}

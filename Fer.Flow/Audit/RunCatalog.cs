using Fer.Flow.Logging;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Audit;

/// <summary>A run as `fer runs` lists it.</summary>
public sealed record RunSummary(string RunId, string Dir, string Flow, DateTime? StartedUtc, TimeSpan? Duration, string Status,
    double? EnsembleValidAccuracy, RunRecord? Record);

/// <summary>The runs in an artifacts folder, newest last.</summary>
public static class RunCatalog
{
    public static IReadOnlyList<RunSummary> List(string artifactsDir)
    {
        var runsDir = Path.Combine(artifactsDir, "runs");
        if (!Directory.Exists(runsDir)) return [];
        bool someoneRunning = IsLocked(artifactsDir);
        return Directory.EnumerateDirectories(runsDir).Order(StringComparer.Ordinal).Select(dir =>
        {
            var record = RunRecord.TryRead(dir);
            var status = record?.Status ?? "unknown";
            // "running" in run.json while nobody holds the artifacts lock means the process died.
            if (status == "running" && !someoneRunning) status = "interrupted";
            var log = Path.Combine(dir, RunLog.FileName);
            if (status == "running" && File.Exists(log) && ClefLog.Read(log).Truncated) status = "interrupted";
            double? accuracy = record?.MetricsOf<Fer.Flow.Stages.EnsembleMetrics>().Select(m => (double?)m.Metrics.ValidAccuracy).FirstOrDefault();
            TimeSpan? duration = record?.FinishedUtc is { } f ? f - record.StartedUtc : null;
            return new RunSummary(Path.GetFileName(dir), dir, record?.Flow ?? "?", record?.StartedUtc, duration, status, accuracy, record);
        }).ToList();
    }

    /// <summary>RUN id, a unique prefix of one, "latest", or "latest~N" (the N-th run before the latest).</summary>
    public static RunSummary Resolve(string artifactsDir, string? run)
    {
        var runs = List(artifactsDir);
        if (runs.Count == 0) throw new FlowDefinitionException($"no runs in {Path.Combine(Path.GetFullPath(artifactsDir), "runs")}");
        if (run is null or "latest") return runs[^1];
        if (run.StartsWith("latest~", StringComparison.Ordinal))
        {
            if (!int.TryParse(run["latest~".Length..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var back))
                throw new FlowDefinitionException($"'{run}': give latest~N with N a whole number, e.g. latest~1 for the run before the latest");
            if (back >= runs.Count)
                throw new FlowDefinitionException($"no run '{run}': there are {runs.Count} runs; latest runs: {string.Join(", ", runs.TakeLast(5).Select(r => r.RunId))}");
            return runs[runs.Count - 1 - back];
        }
        var matches = runs.Where(r => r.RunId.StartsWith(run, StringComparison.Ordinal)).ToList();
        return matches.Count switch
        {
            1 => matches[0],
            0 => throw new FlowDefinitionException($"no run '{run}'; latest runs: {string.Join(", ", runs.TakeLast(5).Select(r => r.RunId))}"),
            _ => throw new FlowDefinitionException($"'{run}' matches {matches.Count} runs: {string.Join(", ", matches.Select(r => r.RunId))}"),
        };
    }

    private static bool IsLocked(string artifactsDir)
    {
        var path = Path.Combine(artifactsDir, ".lock");
        if (!File.Exists(path)) return false;
        try { using var _ = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None); return false; }
        catch (IOException) { return true; }
    }
}

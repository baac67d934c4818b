using Fer.Flow.Logging;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Audit;

/// <summary>A run as `fer runs` lists it.</summary>
public sealed record RunSummary(string RunId, string Dir, string Flow, DateTime? StartedUtc, TimeSpan? Duration, RunStatus Status,
    double? EnsembleValidAccuracy, RunRecord? Record);

/// <summary>The runs in an artifacts folder, newest last.</summary>
public static class RunCatalog
{
    /// <summary>
    /// The runs of a sweep (its id or a unique prefix of one), best first: by the ensemble's validation accuracy,
    /// runs without one last, then by trial. Null when no run belongs to such a sweep.
    /// </summary>
    public static IReadOnlyList<RunSummary>? Sweep(string artifactsDir, string id)
    {
        var runs = List(artifactsDir).Where(r => r.Record?.Sweep is not null).ToList();
        var ids = runs.Select(r => r.Record!.Sweep!.Id).Distinct(StringComparer.Ordinal).ToList();
        var matches = ids.Contains(id) ? [id] : ids.Where(s => s.StartsWith(id, StringComparison.Ordinal)).ToList();
        if (matches.Count == 0) return null;
        if (matches.Count > 1) throw new FlowDefinitionException($"'{id}' matches {matches.Count} sweeps: {string.Join(", ", matches)}");
        return [.. runs.Where(r => r.Record!.Sweep!.Id == matches[0])
            .OrderByDescending(r => r.EnsembleValidAccuracy ?? double.NegativeInfinity).ThenBy(r => r.Record!.Sweep!.Trial)];
    }

    public static IReadOnlyList<RunSummary> List(string artifactsDir)
    {
        var runsDir = Path.Combine(artifactsDir, "runs");
        if (!Directory.Exists(runsDir)) return [];
        return Directory.EnumerateDirectories(runsDir).Order(StringComparer.Ordinal).Select(dir =>
        {
            var record = RunRecord.TryRead(dir);
            var status = record?.Status ?? RunStatus.Unknown;
            // "running" in run.json while nobody holds the run's lock means its process died.
            if (status == RunStatus.Running && !IsHeld(Path.Combine(dir, RunRecord.RunningLockFileName))) status = RunStatus.Interrupted;
            var log = Path.Combine(dir, RunLog.FileName);
            if (status == RunStatus.Running && Fer.Core.Storage.FileStat.Of(log).Kind == Fer.Core.Storage.FileKind.Regular && CutOff(log)) status = RunStatus.Interrupted;
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

    /// <summary>
    /// Whether a run holds the artifacts lock, found without taking it (taking it, even for an instant, made a
    /// run starting then with --wait 0 fail as busy): on Linux from /proc/locks, by the lock file's device and inode.
    /// </summary>
    /// <summary>Whether a log's last event was cut off by a crash; a log too large to read is not judged.</summary>
    private static bool CutOff(string log)
    {
        try { return ClefLog.Read(log).Truncated; }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException) { return false; }
    }

    internal static bool IsLocked(string artifactsDir) => IsHeld(Path.Combine(artifactsDir, ArtifactsLock.FileName));

    /// <summary>Whether a process holds an flock on this file, found without taking it (see <see cref="IsLocked"/>).</summary>
    internal static bool IsHeld(string path)
    {
        var stat = Fer.Core.Storage.FileStat.Of(path);
        if (stat.Kind != Fer.Core.Storage.FileKind.Regular) return false;
        if (OperatingSystem.IsLinux() && stat.Inode != 0 && File.Exists("/proc/locks"))
        {
            try { return HeldIn(File.ReadAllLines("/proc/locks"), stat.Device, stat.Inode); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        // Elsewhere: a shared probe (never conflicts with another probe; a run's own attempt may then wait --wait).
        try { using var _ = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite); return false; }
        catch (IOException) { return true; }
    }

    /// <summary>/proc/locks lines: "1: FLOCK  ADVISORY  WRITE 4321 00:2f:1234 0 EOF" (device major:minor in hex, inode).</summary>
    internal static bool HeldIn(IEnumerable<string> procLocks, ulong device, ulong inode)
    {
        uint major = (uint)(device >> 32), minor = (uint)device;
        foreach (var line in procLocks)
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 6 || fields[1] == "->") continue; // "->": a waiter, not a holder
            var id = fields[5].Split(':');
            if (id.Length != 3) continue;
            if (ulong.TryParse(id[2], out var ino) && ino == inode
                && uint.TryParse(id[0], System.Globalization.NumberStyles.HexNumber, null, out var maj) && maj == major
                && uint.TryParse(id[1], System.Globalization.NumberStyles.HexNumber, null, out var min) && min == minor)
                return true;
        }
        return false;
    }
}

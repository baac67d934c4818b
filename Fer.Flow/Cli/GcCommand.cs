using System.CommandLine;
using System.Globalization;
using Fer.Flow.Audit;
using Fer.Flow.Cache;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Cli;

/// <summary>
/// `fer gc`: removes the cache entries no kept run used, in the manner of `dvc gc`. Kept are the entries of the last N
/// runs (--keep-last, 5 by default) and of runs named with --keep. It holds the artifacts folder alone (runs, sweeps and
/// cluster jobs hold it shared, `fer predict` and `fer export` while they read weights), so it never removes an entry a
/// running command uses: with one running it waits --wait seconds, then stops with exit 3. --dry-run says what it
/// would free and removes nothing.
/// </summary>
public static class GcCommand
{
    public sealed record GcRequest(string Artifacts, int KeepLast = 5, IReadOnlyList<string>? Keep = null, bool DryRun = false, double WaitSeconds = 0);

    public static Command Create(Option<string> artifactsOption)
    {
        var keepLast = new Option<int>("--keep-last") { Description = "Keep what the last N runs used", DefaultValueFactory = _ => 5 };
        var keep = new Option<string[]>("--keep") { Description = "Keep what this run used (id, unique prefix, latest~N); repeatable" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Say what would be removed and freed; remove nothing" };
        var wait = new Option<double>("--wait") { Description = "Seconds to wait for running commands to finish", DefaultValueFactory = _ => 0 };
        var command = new Command("gc", "Remove cache entries that no kept run used (the last N runs and named ones)");
        foreach (var o in new Option[] { artifactsOption, keepLast, keep, dryRun, wait }) command.Options.Add(o);
        command.SetAction(parse => Run(new GcRequest(parse.GetValue(artifactsOption)!, parse.GetValue(keepLast), parse.GetValue(keep) ?? [],
            parse.GetValue(dryRun), parse.GetValue(wait)), Console.Out, Console.Error));
        return command;
    }

    public static int Run(GcRequest r, TextWriter stdout, TextWriter stderr)
    {
        if (FlowCommand.ArtifactsProblem(r.Artifacts) is { } bad) { stderr.WriteLine($"error: {bad}"); return ExitCodes.BadInput; }
        if (r.KeepLast < 0) { stderr.WriteLine($"error: --keep-last {r.KeepLast}: give 0 or more runs"); return ExitCodes.BadInput; }
        if (FlowCommand.WaitProblem(r.WaitSeconds) is { } wait) { stderr.WriteLine($"error: {wait}"); return ExitCodes.BadInput; }
        var artifacts = Path.GetFullPath(r.Artifacts);
        if (!Directory.Exists(artifacts)) { stderr.WriteLine($"error: no artifacts folder {artifacts}"); return ExitCodes.BadInput; }
        ArtifactsLock alone;
        try { alone = ArtifactsLock.Acquire(artifacts, "fer gc", TimeSpan.FromSeconds(r.WaitSeconds), ArtifactsAccess.Exclusive); }
        catch (ArtifactsBusyException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.Busy; }
        catch (ArtifactsUnusableException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.BadInput; }
        using var _ = alone;

        // Runs whose record can be read: a folder without one names no entries it used.
        var runs = RunCatalog.List(artifacts).Where(x => x.Record is not null).ToList();
        var kept = new List<RunSummary>(runs.TakeLast(r.KeepLast));
        try { kept.AddRange((r.Keep ?? []).Select(id => RunCatalog.Resolve(artifacts, id))); }
        catch (FlowDefinitionException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.BadInput; }
        var cache = new StageCache(Path.Combine(artifacts, "cache"));
        var used = kept.Where(k => k.Record is not null).SelectMany(k => k.Record!.Stages)
            .Select(s => cache.EntryDir(s.Stage, s.Fingerprint)).ToHashSet(StringComparer.Ordinal);

        // Every committed entry (cache/<stage>/<fingerprint>; hidden folders are locks, checkpoints and work in progress).
        var entries = !Directory.Exists(cache.Root) ? [] : Directory.EnumerateDirectories(cache.Root)
            .SelectMany(stage => Directory.EnumerateDirectories(stage).Where(d => !Path.GetFileName(d).StartsWith('.')))
            .Order(StringComparer.Ordinal).ToList();
        var doomed = entries.Where(e => !used.Contains(e)).ToList();
        long bytes = doomed.Sum(Size);
        foreach (var d in doomed)
        {
            if (r.DryRun) { stdout.WriteLine($"would remove {Path.GetRelativePath(artifacts, d)} ({Megabytes(Size(d))})"); continue; }
            // Renamed aside first, so a reader never sees half an entry; then deleted.
            var aside = Path.Combine(Path.GetDirectoryName(d)!, $".gc-{Path.GetFileName(d)}-{Guid.NewGuid():N}");
            try
            {
                Directory.Move(d, aside);
                Directory.Delete(aside, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"error: cannot remove {d}: {e.Message}");
                return ExitCodes.Failed;
            }
        }
        if (!r.DryRun) cache.SweepAbandoned();
        stdout.WriteLine($"{(r.DryRun ? "would free" : "freed")} {Megabytes(bytes)} in {doomed.Count} of {entries.Count} cache entries; " +
                         $"kept what {kept.DistinctBy(k => k.RunId).Count()} of {runs.Count} runs used");
        return ExitCodes.Ok;
    }

    private static long Size(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    private static string Megabytes(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + " MB";
}

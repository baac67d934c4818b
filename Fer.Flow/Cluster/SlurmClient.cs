using System.Diagnostics;
using System.Globalization;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Cluster;

/// <summary>A Slurm job as squeue reports it (squeue --states=all keeps finished jobs for MinJobAge seconds).</summary>
public sealed record SlurmJobState(string Id, string State, string Reason, string Node, DateTime? Submitted, DateTime? Started, DateTime? Ended)
{
    /// <summary>States a job leaves no more.</summary>
    public bool Finished => State is "COMPLETED" or "FAILED" or "CANCELLED" or "TIMEOUT" or "NODE_FAIL" or "OUT_OF_MEMORY"
        or "PREEMPTED" or "BOOT_FAIL" or "DEADLINE" or "SPECIAL_EXIT" or "REVOKED";

    public bool Succeeded => State == "COMPLETED";
}

/// <summary>What to ask Slurm for, for every job of a run (a node may add its own arguments in the flow script).</summary>
public sealed record SlurmResources
{
    public string? Partition { get; init; }
    public string? Gres { get; init; }
    public string? Time { get; init; }
    public int? Cpus { get; init; }
    public IReadOnlyList<string> Extra { get; init; } = [];

    public IEnumerable<string> Arguments()
    {
        if (Partition is { } p) yield return $"--partition={p}";
        if (Gres is { } g) yield return $"--gres={g}";
        if (Time is { } t) yield return $"--time={t}";
        if (Cpus is { } c) yield return $"--cpus-per-task={c.ToString(CultureInfo.InvariantCulture)}";
        foreach (var e in Extra) yield return e;
    }
}

/// <summary>A Slurm command that failed: the command, its exit code and its error output, in one line.</summary>
public sealed class SlurmException(string message) : Exception(message);

/// <summary>
/// Slurm's commands (sbatch, squeue, scancel, sinfo), run as processes with a time limit each, so a hung controller
/// is an error and never a hang. Job state comes from squeue --states=all, which works without slurmdbd (sacct does not).
/// </summary>
public sealed class SlurmClient(TimeSpan? commandTimeout = null)
{
    private readonly TimeSpan _timeout = commandTimeout ?? TimeSpan.FromSeconds(60);

    /// <summary>Why Slurm cannot be used from here (sbatch not on PATH), or null.</summary>
    public static string? Missing(string? searchPath = null)
    {
        var path = searchPath ?? Environment.GetEnvironmentVariable("PATH") ?? "";
        bool found = path.Split(':', StringSplitOptions.RemoveEmptyEntries).Any(d => File.Exists(Path.Combine(d, "sbatch")));
        return found ? null : "sbatch is not on PATH: run on a machine with Slurm's client commands (Debian: apt-get install slurm-client), or use --executor local";
    }

    /// <summary>The cluster's partitions (the default one without its '*').</summary>
    public IReadOnlyList<string> Partitions() =>
        [.. Run("sinfo", ["-h", "-o", "%P"]).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => p.TrimEnd('*')).Distinct()];

    /// <summary>Submits a batch script; returns the job id (for an array, the array's id).</summary>
    public string Submit(string script, IEnumerable<string> arguments)
    {
        var output = Run("sbatch", ["--parsable", .. arguments, script]).Trim();
        var id = output.Split(';')[0]; // "123" or "123;cluster"
        return id.Length > 0 && id.All(char.IsDigit) ? id : throw new SlurmException($"sbatch printed '{output}', not a job id");
    }

    /// <summary>The jobs' states; a job Slurm no longer knows is absent. Array tasks are reported as ID_INDEX.</summary>
    public IReadOnlyList<SlurmJobState> Query(IEnumerable<string> jobIds)
    {
        var ids = string.Join(",", jobIds);
        if (ids.Length == 0) return [];
        var text = Run("squeue", ["--states=all", "-h", "-j", ids, "-o", "%i|%T|%r|%N|%V|%S|%e"], okExitCodes: [0, 1]);
        var result = new List<SlurmJobState>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split('|');
            if (f.Length < 7) continue;
            result.Add(new SlurmJobState(f[0].Trim(), f[1].Trim(), f[2].Trim(), f[3].Trim(), Time(f[4]), Time(f[5]), Time(f[6])));
        }
        return result;
    }

    public void Cancel(IEnumerable<string> jobIds)
    {
        var ids = jobIds.ToList();
        if (ids.Count > 0) Run("scancel", ids, okExitCodes: [0, 1]);
    }

    private static DateTime? Time(string text) =>
        DateTime.TryParse(text.Trim(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeLocal, out var t) ? t.ToUniversalTime() : null;

    private string Run(string command, IReadOnlyList<string> arguments, int[]? okExitCodes = null)
    {
        var start = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        Process process;
        try { process = Process.Start(start) ?? throw new SlurmException($"{command} did not start"); }
        catch (System.ComponentModel.Win32Exception e) { throw new SlurmException($"{command} cannot be run: {e.Message}"); }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(_timeout))
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                throw new SlurmException($"{command} did not answer within {_timeout.TotalSeconds:0} s (is slurmctld running?)");
            }
            if (!(okExitCodes ?? [0]).Contains(process.ExitCode))
                throw new SlurmException($"{command} {string.Join(' ', arguments.Select(FlowCommandQuote))} failed (exit {process.ExitCode}): {OneLine(stderr.Result)}");
            return stdout.Result;
        }
    }

    private static string FlowCommandQuote(string a) => Cli.FlowCommand.Quote(a);

    private static string OneLine(string text) => string.Join(" ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) is { Length: > 0 } t ? t : "no message";
}

using System.Globalization;

namespace Fer.Flow.Pipeline;

/// <summary>One swept setting: its key as --set writes it (epochs, train.cnn.lr) and the values tried, as text.</summary>
public sealed record SweepAxis(string Key, IReadOnlyList<string> Values);

/// <summary>Which trial of which sweep a run is (recorded in run.json, so `fer runs` and `fer compare` group them).</summary>
public sealed record SweepTrial(string Id, int Trial, int Trials, SortedDictionary<string, string> Values);

/// <summary>
/// A sweep: the cross product of its axes, each trial a set of --set values (the first axis varies slowest). Locally
/// the trials run one after another on one artifacts folder, so what they share (ingest, split) is computed once; on
/// Slurm they are one job array.
/// </summary>
public sealed class Sweep
{
    /// <summary>More trials than this is a typo, not a plan (10 values of 4 settings is 10,000).</summary>
    public const int MaxTrials = 1000;

    public IReadOnlyList<SweepAxis> Axes { get; }

    public Sweep(IReadOnlyList<SweepAxis> axes)
    {
        foreach (var dup in axes.GroupBy(a => a.Key, StringComparer.Ordinal).Where(g => g.Count() > 1))
            throw new FlowDefinitionException($"--sweep {dup.Key}: swept twice; give its values once (--sweep {dup.Key}=a,b)");
        long trials = axes.Aggregate(1L, (n, a) => n * a.Values.Count);
        if (trials > MaxTrials)
            throw new FlowDefinitionException($"the sweep has {trials.ToString("N0", CultureInfo.InvariantCulture)} trials ({string.Join(" x ", axes.Select(a => a.Values.Count))}); at most {MaxTrials:N0}");
        Axes = axes;
    }

    /// <summary>key=v1,v2,... (--sweep's text): a key and at least one value, none empty.</summary>
    public static SweepAxis ParseAxis(string text)
    {
        var eq = text.IndexOf('=');
        if (eq <= 0) throw new FlowDefinitionException($"--sweep {text}: expected name=value1,value2 (e.g. --sweep epochs=10,20)");
        var key = text[..eq].Trim();
        var values = text[(eq + 1)..].Split(',', StringSplitOptions.TrimEntries);
        if (values.Any(v => v.Length == 0)) throw new FlowDefinitionException($"--sweep {text}: a value is empty; give values separated by commas");
        if (values.Distinct(StringComparer.Ordinal).Count() != values.Length) throw new FlowDefinitionException($"--sweep {text}: a value is given twice");
        return new SweepAxis(key, values);
    }

    /// <summary>The script's axes with the command line's: an axis given on the command line replaces the script's of that key.</summary>
    public static Sweep Combine(IReadOnlyList<SweepAxis> script, IReadOnlyList<SweepAxis> commandLine)
    {
        var fromCli = commandLine.Select(a => a.Key).ToHashSet(StringComparer.Ordinal);
        return new Sweep([.. script.Where(a => !fromCli.Contains(a.Key)), .. commandLine]);
    }

    public bool IsEmpty => Axes.Count == 0;

    /// <summary>Every trial's values (key, value) in axis order; trial i (0-based) is the i-th of the cross product.</summary>
    public IReadOnlyList<IReadOnlyList<(string Key, string Value)>> Trials()
    {
        IEnumerable<IReadOnlyList<(string, string)>> trials = [[]];
        foreach (var axis in Axes)
            trials = trials.SelectMany(t => axis.Values.Select(v => (IReadOnlyList<(string, string)>)[.. t, (axis.Key, v)])).ToList();
        return [.. trials];
    }

    /// <summary>A sweep's id: when it started and a random suffix, like a run's.</summary>
    public static string NewId() => $"sweep-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..6]}";
}

using System.Globalization;
using System.Text.Json;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Audit;

/// <summary>What a diff row describes, in the order rows are listed.</summary>
public enum DiffSection
{
    /// <summary>A flow parameter (declared with `param` in the script).</summary>
    Param,
    /// <summary>A stage setting in force, by node (train.cnn.lr).</summary>
    Setting,
    /// <summary>A model hyperparameter of an ensemble member (train.cnn.conv_dropout).</summary>
    Hyper,
    /// <summary>An input file's SHA-256, by path.</summary>
    Input,
    /// <summary>A number (or text) a node's metrics record reported, by node and field path.</summary>
    Metric,
    /// <summary>How long things took (seconds, images per second): differs between any two runs; shown on request.</summary>
    Timing,
}

/// <summary>One row of a diff: the values in run A and run B (null: absent there) and how B differs from A.</summary>
public sealed record DiffRow(DiffSection Section, string Key, string? A, string? B, string Change, double? Delta)
{
    /// <summary>True when the two runs differ in this row.</summary>
    public bool Changed => Change.Length > 0;
}

/// <summary>One row of a comparison of several runs.</summary>
public sealed record CompareRow(DiffSection Section, string Key, IReadOnlyList<string?> Values, bool Changed);

public sealed record RunDiffOptions(bool All = false, bool Timing = false);

/// <summary>
/// Compares two runs' records (run.json): flow parameters, each node's settings, member hyperparameters, input
/// file hashes and each node's typed metrics flattened to field paths (predict.valid.per_class.Happy.f1). A
/// numeric change is given as B - A; text as changed; a row present in one run only as added or removed.
/// </summary>
public static class RunDiff
{
    public const string Added = "added", Removed = "removed", ChangedText = "changed";

    public static IReadOnlyList<DiffRow> Compute(RunRecord a, RunRecord b, RunDiffOptions? options = null)
    {
        options ??= new RunDiffOptions();
        var left = Values(a);
        var right = Values(b);
        var keys = new List<(DiffSection Section, string Key)>();
        var seen = new HashSet<(DiffSection, string)>();
        foreach (var k in left.Keys.Concat(right.Keys))
            if (seen.Add(k)) keys.Add(k);
        // Sections in their declared order; within one, first appearance (run A's node order, then B's new keys).
        var rows = keys.Select((k, i) => (k, i)).OrderBy(x => x.k.Section).ThenBy(x => x.i).Select(x => x.k)
            .Where(k => options.Timing || k.Section != DiffSection.Timing)
            .Select(k => Row(k.Section, k.Key, left.GetValueOrDefault(k), right.GetValueOrDefault(k)));
        return rows.Where(r => options.All || r.Changed).ToList();
    }

    /// <summary>Several runs side by side: one value per run (null: absent there); Changed when they are not all equal.</summary>
    public static IReadOnlyList<CompareRow> Compare(IReadOnlyList<RunRecord> runs, RunDiffOptions? options = null)
    {
        options ??= new RunDiffOptions();
        var values = runs.Select(Values).ToList();
        var keys = new List<(DiffSection Section, string Key)>();
        var seen = new HashSet<(DiffSection, string)>();
        foreach (var k in values.SelectMany(v => v.Keys))
            if (seen.Add(k)) keys.Add(k);
        return keys.Select((k, i) => (k, i)).OrderBy(x => x.k.Section).ThenBy(x => x.i).Select(x => x.k)
            .Where(k => options.Timing || k.Section != DiffSection.Timing)
            .Select(k =>
            {
                var row = values.Select(v => v.GetValueOrDefault(k)).ToArray();
                bool changed = row.Skip(1).Any(v => Row(k.Section, k.Key, row[0], v).Changed);
                return new CompareRow(k.Section, k.Key, row, changed);
            })
            .Where(r => options.All || r.Changed).ToList();
    }

    /// <summary>One row of two values, as Compute gives it.</summary>
    public static DiffRow Compute2(DiffSection section, string key, string? a, string? b) => Row(section, key, a, b);

    private static DiffRow Row(DiffSection section, string key, string? a, string? b)
    {
        if (a is null && b is null) return new DiffRow(section, key, a, b, "", null);
        if (a is null) return new DiffRow(section, key, a, b, Added, null);
        if (b is null) return new DiffRow(section, key, a, b, Removed, null);
        if (a == b) return new DiffRow(section, key, a, b, "", null);
        if (TryNumber(a, out var x) && TryNumber(b, out var y))
        {
            if (x == y || (double.IsNaN(x) && double.IsNaN(y))) return new DiffRow(section, key, a, b, "", null);
            var delta = y - x;
            return new DiffRow(section, key, a, b, FormatDelta(delta), delta);
        }
        return new DiffRow(section, key, a, b, ChangedText, null);
    }

    /// <summary>Every value of a run as (section, key) -> canonical text, in the run's order.</summary>
    internal static Dictionary<(DiffSection, string), string> Values(RunRecord r)
    {
        var values = new Dictionary<(DiffSection, string), string>();
        foreach (var (k, v) in r.Parameters) values[(DiffSection.Param, k)] = v;
        // Nodes in the order they ran (run.json's stage reports), then any planned node that did not report.
        var order = r.Stages.Select(s => s.Stage).Concat(r.Settings.Keys).Distinct(StringComparer.Ordinal).ToList();
        foreach (var node in order)
        {
            if (!r.Settings.TryGetValue(node, out var settings)) continue;
            foreach (var (name, value) in settings)
            {
                if (name == HyperparametersSetting)
                {
                    foreach (var (h, hv) in ParsePairs(value)) values[(DiffSection.Hyper, $"{node}.{h}")] = hv;
                    continue;
                }
                values[(DiffSection.Setting, $"{node}.{name}")] = value;
            }
        }
        foreach (var (path, sha) in r.InputHashes) values[(DiffSection.Input, path)] = sha;
        foreach (var s in r.Stages)
        {
            values[(DiffSection.Timing, $"{s.Stage}.stage_seconds")] = s.Seconds.ToString("R", CultureInfo.InvariantCulture);
            if (s.Metrics is { } m) Flatten(s.Stage, m, values, top: true);
        }
        return values;
    }

    /// <summary>The member setting that carries the model's hyperparameters (listed in their own section).</summary>
    private const string HyperparametersSetting = "hyperparameters";

    private static void Flatten(string prefix, JsonElement e, Dictionary<(DiffSection, string), string> values, bool top = false)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    // Member metrics repeat the hyperparameters of the settings; they are rows of the hyper section.
                    if (top && p.Name == HyperparametersSetting) continue;
                    Flatten($"{prefix}.{p.Name}", p.Value, values);
                }
                break;
            case JsonValueKind.Array:
                var items = e.EnumerateArray().ToList();
                if (items.All(i => i.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array)))
                {
                    values[(Section(prefix), prefix)] = string.Join(", ", items.Select(Scalar));
                    break;
                }
                for (int i = 0; i < items.Count; i++) Flatten($"{prefix}[{i}]", items[i], values);
                break;
            case JsonValueKind.Null or JsonValueKind.Undefined:
                break;
            default:
                values[(Section(prefix), prefix)] = Scalar(e);
                break;
        }
    }

    private static DiffSection Section(string key)
    {
        // A field named seconds, *_seconds or images_per_second, or anything under one (seconds.smoothgrad).
        return key.Split('.').Any(part => part is "seconds" or "images_per_second" || part.EndsWith("_seconds", StringComparison.Ordinal))
            ? DiffSection.Timing : DiffSection.Metric;
    }

    private static string Scalar(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString() ?? "",
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Null => "",
        _ => e.GetRawText(),
    };

    /// <summary>"k=v,k=v" as SettingsSchema.Canonical writes a dictionary.</summary>
    private static IEnumerable<(string Key, string Value)> ParsePairs(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2))
            .Select(p => (p[0], p.Length > 1 ? p[1] : ""));

    internal static bool TryNumber(string s, out double d) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out d) && !s.Contains(',');

    public static string FormatDelta(double d) => (d > 0 ? "+" : "") + FormatNumber(d);

    /// <summary>Six significant digits at most, no exponent for everyday sizes: what a table shows.</summary>
    public static string FormatNumber(double d)
    {
        if (d == Math.Floor(d) && Math.Abs(d) < 1e15) return d.ToString("0", CultureInfo.InvariantCulture);
        var magnitude = Math.Abs(d) < 1e-300 ? 0 : (int)Math.Floor(Math.Log10(Math.Abs(d)));
        if (magnitude < -4 || magnitude >= 15) return d.ToString("G6", CultureInfo.InvariantCulture);
        var decimals = Math.Clamp(5 - magnitude, 0, 15);
        return Math.Round(d, decimals).ToString("0." + new string('#', Math.Max(1, decimals)), CultureInfo.InvariantCulture);
    }

    /// <summary>A value as a table shows it: numbers shortened, SHA-256 hashes to their first 12 digits.</summary>
    public static string Display(string? v)
    {
        if (v is null) return "-";
        if (v.Length == 64 && v.All(Uri.IsHexDigit)) return v[..12] + "…";
        if (TryNumber(v, out var d) && v.Any(c => c is '.' or 'e' or 'E')) return FormatNumber(d);
        return v;
    }
}

using System.Globalization;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Scripting;

/// <summary>A key and value in a stage's or member's settings, as a script writes it ("epochs" => 5).</summary>
public sealed record Setting(string Key, object Value);

/// <summary>
/// The API flow scripts call (through the F# prelude flows/Fer.fsx). A script declares its parameters with
/// <see cref="Param{T}"/>, which returns the command line's --set value when one is given, and ends with
/// <see cref="Define"/>. The host evaluates one script at a time, so the capture is a simple locked static.
/// </summary>
public static class FlowScript
{
    private static readonly Lock Gate = new();
    private static Capture? _current;

    private sealed class Capture(IReadOnlyDictionary<string, string> overrides)
    {
        public IReadOnlyDictionary<string, string> Overrides { get; } = overrides;
        public SortedDictionary<string, object> Declared { get; } = new(StringComparer.Ordinal);
        public FlowDefinition? Flow { get; set; }
    }

    internal static void Begin(IReadOnlyDictionary<string, string> flowOverrides)
    {
        lock (Gate) _current = new Capture(flowOverrides);
    }

    internal static (FlowDefinition? Flow, SortedDictionary<string, object> Declared) End()
    {
        lock (Gate)
        {
            var c = _current ?? throw new InvalidOperationException("no flow script is being evaluated");
            _current = null;
            return (c.Flow, c.Declared);
        }
    }

    private static Capture Current => _current
        ?? throw new InvalidOperationException("flow scripts are run by the fer host: dotnet run --project Fer.Flow -- run FLOW.fsx");

    /// <summary>A flow parameter with its default; --set name=value on the command line overrides it.</summary>
    public static T Param<T>(string name, T defaultValue) where T : notnull
    {
        var c = Current;
        T value = defaultValue;
        if (c.Overrides.TryGetValue(name, out var text))
        {
            object? parsed = defaultValue switch
            {
                int => int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) ? i : null,
                long => long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) ? l : null,
                double => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null,
                bool => bool.TryParse(text, out var b) ? b : null,
                string => text,
                _ => throw new FlowDefinitionException($"parameter '{name}': unsupported type {typeof(T).Name}"),
            };
            if (parsed is null)
                throw new FlowDefinitionException(
                    $"--set {name}={text}: parameter '{name}' expects {TypeText(typeof(T))} (default {StageParameter.Canonical(defaultValue)})");
            value = (T)parsed;
        }
        c.Declared[name] = value;
        return value;
    }

    public static StageSpec Stage(string name, IEnumerable<Setting> settings)
    {
        var spec = new StageSpec(name);
        foreach (var s in settings) spec.Settings[s.Key] = s.Value;
        return spec;
    }

    public static MemberSpec Member(string name, string model, IEnumerable<Setting> settings) =>
        new(name, model, settings.ToDictionary(s => s.Key, s => s.Value, StringComparer.Ordinal));

    public static StageSpec Train(IEnumerable<MemberSpec> members, IEnumerable<Setting> settings)
    {
        var spec = Stage("train", settings);
        spec.Members.AddRange(members);
        return spec;
    }

    public static FlowDefinition Define(string name, IEnumerable<StageSpec> stages)
    {
        var flow = new FlowDefinition(name, stages.ToList());
        Current.Flow = flow;
        return flow;
    }

    private static string TypeText(Type t) =>
        t == typeof(int) || t == typeof(long) ? "an integer" : t == typeof(double) ? "a number" : t == typeof(bool) ? "true or false" : "text";
}

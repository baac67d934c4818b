using System.Globalization;

namespace Fer.Flow.Pipeline;

public enum ParameterKind { Int, Float, Bool, String }

/// <summary>A parameter a stage understands: its type, default and meaning. Unknown names are errors.</summary>
public sealed record StageParameter(string Name, ParameterKind Kind, object Default, string Description, IReadOnlyList<string>? Choices = null)
{
    public static StageParameter Int(string name, long @default, string description) => new(name, ParameterKind.Int, @default, description);
    public static StageParameter Float(string name, double @default, string description) => new(name, ParameterKind.Float, @default, description);
    public static StageParameter Bool(string name, bool @default, string description) => new(name, ParameterKind.Bool, @default, description);
    public static StageParameter String(string name, string @default, string description, params string[] choices) =>
        new(name, ParameterKind.String, @default, description, choices.Length == 0 ? null : choices);

    /// <summary>Converts a value from a script (boxed F# value) or the command line (text) to this parameter's type.</summary>
    public object Coerce(object value, string where)
    {
        object result = (Kind, value) switch
        {
            (ParameterKind.Int, int i) => (long)i,
            (ParameterKind.Int, long l) => l,
            (ParameterKind.Int, string s) when long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) => l,
            (ParameterKind.Float, double d) => d,
            (ParameterKind.Float, float f) => (double)f,
            (ParameterKind.Float, int i) => (double)i,
            (ParameterKind.Float, long l) => (double)l,
            (ParameterKind.Float, string s) when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
            (ParameterKind.Bool, bool b) => b,
            (ParameterKind.Bool, string s) when bool.TryParse(s, out var b) => b,
            (ParameterKind.String, string s) => s,
            _ => throw new FlowDefinitionException(
                $"{where}: parameter '{Name}' expects {KindText}, got {Describe(value)}"),
        };
        if (Choices is not null && result is string str && !Choices.Contains(str))
            throw new FlowDefinitionException($"{where}: parameter '{Name}' must be one of {string.Join(", ", Choices)}, got '{str}'");
        return result;
    }

    public string KindText => Kind switch
    {
        ParameterKind.Int => "an integer",
        ParameterKind.Float => "a number",
        ParameterKind.Bool => "true or false",
        _ => "text",
    };

    private static string Describe(object v) => v is string s ? $"'{s}'" : $"{Canonical(v)} ({v.GetType().Name})";

    /// <summary>"k=v, k=v": how dictionaries appear in log messages (Serilog would print key-value pair objects).</summary>
    public static string Pairs<TValue>(IEnumerable<KeyValuePair<string, TValue>> pairs) =>
        string.Join(", ", pairs.Select(kv => $"{kv.Key}={Canonical(kv.Value!)}"));

    /// <summary>Culture-invariant text of a value, used in fingerprints and logs.</summary>
    public static string Canonical(object v) => v switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };
}

/// <summary>An error in a flow definition or its parameters (exit code 2).</summary>
public sealed class FlowDefinitionException(string message) : Exception(message);

using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace Fer.Flow.Pipeline;

/// <summary>An error in a flow definition, its settings or its graph (exit code 2, before anything runs).</summary>
public sealed class FlowDefinitionException(string message) : Exception(message);

/// <summary>A property of a settings record the binder ignores (it is filled by the stage itself).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class NotASettingAttribute : Attribute;

/// <summary>One setting of a settings record: its snake_case name, type, default and constraints.</summary>
public sealed record SettingInfo(string Name, PropertyInfo Property, object? Default, string Description,
    RangeAttribute? Range, AllowedValuesAttribute? Choices, RegularExpressionAttribute? Pattern)
{
    public Type Type => Property.PropertyType;

    public string KindText => Type == typeof(int) || Type == typeof(long) ? "an integer"
        : Type == typeof(double) || Type == typeof(float) ? "a number"
        : Type == typeof(bool) ? "true or false"
        : Type.IsEnum ? "one of " + string.Join(", ", Enum.GetNames(Type).Select(SettingsSchema.SnakeCase))
        : "text";

    /// <summary>"between 0 and 1 (exclusive)", "one of a, b", ... for error messages.</summary>
    public string Allowed
    {
        get
        {
            if (Choices is not null) return "one of " + string.Join(", ", Choices.Values.Select(v => $"'{v}'"));
            if (Range is not null)
            {
                var min = Convert.ToString(Range.Minimum, CultureInfo.InvariantCulture);
                var max = Convert.ToString(Range.Maximum, CultureInfo.InvariantCulture);
                var lo = Range.MinimumIsExclusive ? "(" : "[";
                var hi = Range.MaximumIsExclusive ? ")" : "]";
                return $"{KindText} in {lo}{min}, {max}{hi}";
            }
            if (Pattern is not null) return $"text matching {Pattern.Pattern}";
            return KindText;
        }
    }
}

/// <summary>The settings a record type declares: its public properties, in snake_case, with DataAnnotations constraints.</summary>
public static class SettingsSchema
{
    public static IReadOnlyList<SettingInfo> Of(Type type, object? defaults = null)
    {
        defaults ??= DefaultInstance(type);
        return type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetCustomAttribute<NotASettingAttribute>() is null && p.GetIndexParameters().Length == 0 && IsSupported(p.PropertyType))
            .Select(p => new SettingInfo(SnakeCase(p.Name), p, defaults is null ? null : p.GetValue(defaults),
                p.GetCustomAttribute<DescriptionAttribute>()?.Description ?? "",
                p.GetCustomAttribute<RangeAttribute>(), p.GetCustomAttribute<AllowedValuesAttribute>(),
                p.GetCustomAttribute<RegularExpressionAttribute>()))
            .ToList();
    }

    private static bool IsSupported(Type t) =>
        t == typeof(int) || t == typeof(long) || t == typeof(double) || t == typeof(float) || t == typeof(bool) || t == typeof(string) || t.IsEnum;

    public static object? DefaultInstance(Type type) =>
        type.GetConstructor(Type.EmptyTypes) is { } ctor ? ctor.Invoke(null) : null;

    /// <summary>ValidFraction -> valid_fraction.</summary>
    public static string SnakeCase(string name)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c))
            {
                if (i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1]) && char.IsUpper(name[i - 1]))))
                    sb.Append('_');
                sb.Append(char.ToLowerInvariant(c));
            }
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>Culture-invariant text of a value, used in fingerprints, logs and run records.</summary>
    public static string Canonical(object? v) => v switch
    {
        null => "",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        Enum e => SnakeCase(e.ToString()),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        System.Collections.IDictionary dict => string.Join(",", dict.Keys.Cast<object>().Select(k => $"{k}={Canonical(dict[k])}").Order(StringComparer.Ordinal)),
        string s => s,
        System.Collections.IEnumerable list => "[" + string.Join(",", list.Cast<object?>().Select(Canonical)) + "]", // a list as a list, not its type name
        _ => v.ToString() ?? "",
    };

    /// <summary>"k=v, k=v": how dictionaries appear in log messages.</summary>
    public static string Pairs<TValue>(IEnumerable<KeyValuePair<string, TValue>> pairs) =>
        string.Join(", ", pairs.Select(kv => $"{kv.Key}={Canonical(kv.Value)}"));
}

/// <summary>
/// The one place a value a flow gives (a script's int, float or text, a --set text) becomes a setting's, parameter's
/// or hyperparameter's type: text is read culture-invariantly, numbers widen but never narrow silently, enums match
/// their snake_case or C# name.
/// </summary>
public static class SettingValue
{
    /// <summary>The value as <paramref name="t"/>, or null when it does not convert; an integer too large for an int is an OverflowException.</summary>
    public static object? Convert(object value, Type t) => (value, t) switch
    {
        (string s, _) when t == typeof(string) => s,
        (string s, _) when t == typeof(long) => long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) ? l : null,
        (string s, _) when t == typeof(int) => long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) ? Narrow(l) : null,
        (string s, _) when t == typeof(double) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null,
        (string s, _) when t == typeof(bool) => bool.TryParse(s, out var b) ? b : null,
        (string s, _) when t.IsEnum => Enum.GetNames(t).FirstOrDefault(n => SettingsSchema.SnakeCase(n) == s.Trim().ToLowerInvariant() || n.Equals(s.Trim(), StringComparison.OrdinalIgnoreCase)) is { } n ? Enum.Parse(t, n) : null,
        (int i, _) when t == typeof(long) => (long)i,
        (long l, _) when t == typeof(long) => l,
        (int i, _) when t == typeof(int) => i,
        (long l, _) when t == typeof(int) => Narrow(l),
        (int i, _) when t == typeof(double) => (double)i,
        (long l, _) when t == typeof(double) => (double)l,
        (double d, _) when t == typeof(double) => d,
        (float f, _) when t == typeof(double) => (double)f,
        (bool b, _) when t == typeof(bool) => b,
        _ when t.IsInstanceOfType(value) => value,
        _ => null,
    };

    private static object Narrow(long l) => l is >= int.MinValue and <= int.MaxValue ? (int)l : throw new OverflowException();

    /// <summary>A number as a double (a model's hyperparameter), or null when it is not one.</summary>
    public static double? Number(object value) => Convert(value, typeof(double)) as double?;
}

/// <summary>
/// Binds a stage's settings record once, at plan time, from its defaults, the script's values and --set text:
/// types are converted without narrowing, ranges, choices and patterns are checked, and an unknown name is an
/// error listing the known ones. Works for C# records with init properties and for F# records (constructor).
/// </summary>
public static class SettingsBinder
{
    public static object Bind(Type type, object? defaults, IReadOnlyDictionary<string, object> given, string owner)
    {
        defaults ??= SettingsSchema.DefaultInstance(type)
            ?? throw new FlowDefinitionException($"{owner}: settings type {type.Name} has no defaults");
        var schema = SettingsSchema.Of(type, defaults);
        var values = schema.ToDictionary(s => s.Name, s => s.Default, StringComparer.Ordinal);
        foreach (var (key, value) in given)
        {
            var info = schema.FirstOrDefault(s => s.Name == key)
                ?? throw new FlowDefinitionException(
                    $"{owner}: unknown setting '{key}'; its settings: {(schema.Count == 0 ? "none" : string.Join(", ", schema.Select(s => s.Name)))}");
            values[key] = Coerce(info, value, owner);
        }
        foreach (var info in schema) Validate(info, values[info.Name], owner);
        return Construct(type, defaults, schema, values, owner);
    }

    /// <summary>Canonical name=value of every setting: the part of a fingerprint that settings contribute.</summary>
    public static SortedDictionary<string, string> Canonical(object settings)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in settings.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
            if (p.GetIndexParameters().Length == 0)
                result[SettingsSchema.SnakeCase(p.Name)] = SettingsSchema.Canonical(p.GetValue(settings));
        return result;
    }

    internal static object Coerce(SettingInfo info, object value, string owner)
    {
        try
        {
            return SettingValue.Convert(value, info.Type) ?? throw new FlowDefinitionException(
                $"{owner}: {info.Name} expects {info.Allowed}, got {Describe(value)}");
        }
        catch (OverflowException)
        {
            throw new FlowDefinitionException($"{owner}: {info.Name} expects {info.Allowed} that fits in 32 bits, got {SettingsSchema.Canonical(value)}");
        }
    }

    private static void Validate(SettingInfo info, object? value, string owner)
    {
        if (value is double d && !double.IsFinite(d))
            throw new FlowDefinitionException($"{owner}: {info.Name} expects a finite number, got {SettingsSchema.Canonical(d)}");
        if (info.Range is { } range && value is not null && !range.IsValid(value))
            throw new FlowDefinitionException($"{owner}: {info.Name} must be {info.Allowed}, got {SettingsSchema.Canonical(value)}");
        if (info.Choices is { } choices && !choices.IsValid(value))
            throw new FlowDefinitionException($"{owner}: {info.Name} must be {info.Allowed}, got {Describe(value)}");
        if (info.Pattern is { } pattern && value is string s && s.Length > 0 && !pattern.IsValid(s))
            throw new FlowDefinitionException($"{owner}: {info.Name} must be {info.Allowed}, got {Describe(s)}");
    }

    private static object Construct(Type type, object defaults, IReadOnlyList<SettingInfo> schema, Dictionary<string, object?> values, string owner)
    {
        if (type.GetConstructor(Type.EmptyTypes) is not null && schema.All(s => s.Property.CanWrite))
        {
            // A C# record with init properties: copy the defaults (so non-setting properties survive), then set.
            var clone = type.GetMethod("<Clone>$") is { } cloneMethod ? cloneMethod.Invoke(defaults, null)! : Activator.CreateInstance(type)!;
            foreach (var s in schema) s.Property.SetValue(clone, values[s.Name]);
            return clone;
        }
        // An F# record (or a positional record): one constructor taking every property in declaration order.
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0).ToList();
        var ctor = type.GetConstructors().FirstOrDefault(c => c.GetParameters().Length == properties.Count)
            ?? throw new FlowDefinitionException($"{owner}: settings type {type.Name} has no constructor taking all its {properties.Count} fields");
        var args = ctor.GetParameters().Select((param, i) =>
        {
            var property = properties.FirstOrDefault(p => string.Equals(p.Name, param.Name?.TrimEnd('@'), StringComparison.OrdinalIgnoreCase)) ?? properties[i];
            var name = SettingsSchema.SnakeCase(property.Name);
            return values.TryGetValue(name, out var v) ? v : property.GetValue(defaults);
        }).ToArray();
        return ctor.Invoke(args);
    }

    private static string Describe(object? v) => v is string s ? $"'{s}'" : $"{SettingsSchema.Canonical(v)} ({v?.GetType().Name ?? "null"})";
}

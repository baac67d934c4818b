namespace Fer.Flow.Pipeline;

/// <summary>A stage's (or member's) settings after defaults, script values and --set overrides, typed.</summary>
public sealed class StageSettings
{
    private readonly SortedDictionary<string, object> _values;

    public StageSettings(string owner, IReadOnlyList<StageParameter> schema, IReadOnlyDictionary<string, object> given)
    {
        Owner = owner;
        _values = new SortedDictionary<string, object>(StringComparer.Ordinal);
        foreach (var p in schema) _values[p.Name] = p.Default;
        foreach (var (key, value) in given)
        {
            var p = schema.FirstOrDefault(s => s.Name == key)
                ?? throw new FlowDefinitionException(
                    $"{owner}: unknown setting '{key}'; valid settings: {string.Join(", ", schema.Select(s => s.Name))}");
            _values[key] = p.Coerce(value, owner);
        }
    }

    public string Owner { get; }
    public IReadOnlyDictionary<string, object> Values => _values;

    public long Int(string name) => (long)Get(name);
    public double Float(string name) => (double)Get(name);
    public bool Bool(string name) => (bool)Get(name);
    public string String(string name) => (string)Get(name);

    private object Get(string name) => _values.TryGetValue(name, out var v)
        ? v : throw new InvalidOperationException($"{Owner}: no setting '{name}' in its schema");

    /// <summary>Canonical "k=v" lines, the part of a fingerprint that settings contribute.</summary>
    public SortedDictionary<string, string> Canonical() =>
        new(_values.ToDictionary(kv => kv.Key, kv => StageParameter.Canonical(kv.Value)), StringComparer.Ordinal);
}

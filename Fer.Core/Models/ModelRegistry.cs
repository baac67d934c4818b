using System.Globalization;

namespace Fer.Core.Models;

/// <summary>What kind of network a model is; the report places models by it.</summary>
public enum ModelFamily { Convolutional, FullyConnected }

/// <summary>
/// A model a flow can name: its family, its hyperparameters with their defaults, and how to build it for a
/// number of classes and an image side. <see cref="SourceHash"/> is set for models defined in a flow script.
/// </summary>
public sealed record ModelEntry(string Name, ModelFamily Family, IReadOnlyDictionary<string, double> Hyperparameters,
    Func<int, int, IReadOnlyDictionary<string, double>, FerModel> Factory, string? SourceHash = null)
{
    /// <summary>
    /// The identity of the code that builds and runs the model: the script's hash for a script's model, else the IL
    /// of the factory and of everything it reaches in Fer (the model's class, its layers, its initialisation). It
    /// enters the fingerprint of every member that trains the model, so changing a layer retrains them.
    /// </summary>
    public string CodeIdentity => SourceHash ?? Fer.Core.CodeIdentity.Of(Factory.Method);
}

/// <summary>
/// The models a flow can name. <see cref="BuiltIn"/> holds Fer's own; a flow's catalog adds the models its
/// script registers (<see cref="With"/> returns a new catalog, so no global state changes between flows).
/// </summary>
public sealed class ModelCatalog
{
    private readonly Dictionary<string, ModelEntry> _entries;

    private ModelCatalog(Dictionary<string, ModelEntry> entries) => _entries = entries;

    public static ModelCatalog BuiltIn { get; } = new(new Dictionary<string, ModelEntry>(StringComparer.Ordinal)
    {
        ["seed-cnn"] = new("seed-cnn", ModelFamily.Convolutional, new Dictionary<string, double> { ["conv_dropout"] = 0.3, ["dense_dropout"] = 0.5 },
            (c, s, h) => new SeedCnn(c, s, h["conv_dropout"], h["dense_dropout"])),
        ["seed-dnn"] = new("seed-dnn", ModelFamily.FullyConnected, new Dictionary<string, double> { ["dropout"] = 0.3 },
            (c, s, h) => new SeedDnn(c, s, h["dropout"])),
        ["vgg-bn"] = new("vgg-bn", ModelFamily.Convolutional,
            new Dictionary<string, double> { ["width"] = 1.0, ["dropout"] = 0.3, ["dense"] = 256, ["dense_layers"] = 1, ["crop"] = 0 },
            (c, s, h) => new FerVgg(c, s, h["width"], h["dropout"], Whole(h["dense"], "dense"), Whole(h["dense_layers"], "dense_layers"),
                h["crop"] == 0 ? 0 : Whole(h["crop"], "crop"))),
    });

    public IReadOnlyList<string> Names => [.. _entries.Keys.Order(StringComparer.Ordinal)];

    /// <summary>A hyperparameter that counts something (units, layers): a whole number, or an error naming it.</summary>
    private static int Whole(double value, string name) => value == Math.Floor(value) && value is >= 1 and <= 1 << 20 ? (int)value
        : throw new ArgumentException($"hyperparameter {name} must be a whole number from 1, got {value}");

    public bool Contains(string name) => _entries.ContainsKey(name);

    public ModelEntry Get(string name) => _entries.TryGetValue(name, out var e)
        ? e : throw new ArgumentException($"unknown model '{name}'; registered models: {string.Join(", ", Names)}");

    /// <summary>A catalog with one more model (or a script's new definition of one it already has).</summary>
    public ModelCatalog With(ModelEntry entry)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(entry.Name);
        if (_entries.TryGetValue(entry.Name, out var existing) && existing.SourceHash is null)
            throw new ArgumentException($"model '{entry.Name}' is one of Fer's own; give the script's model another name");
        return new ModelCatalog(new Dictionary<string, ModelEntry>(_entries, StringComparer.Ordinal) { [entry.Name] = entry });
    }

    /// <summary>The hyperparameters in force: the model's defaults with the given ones applied (unknown names are errors).</summary>
    public SortedDictionary<string, double> Resolve(string name, IReadOnlyDictionary<string, double>? given)
    {
        var entry = Get(name);
        var values = new SortedDictionary<string, double>(entry.Hyperparameters.ToDictionary(), StringComparer.Ordinal);
        foreach (var (key, value) in given ?? new Dictionary<string, double>())
        {
            if (!values.ContainsKey(key))
                throw new ArgumentException($"model {name} has no hyperparameter '{key}'; its hyperparameters: {(values.Count == 0 ? "none" : string.Join(", ", values.Keys))}");
            if (!double.IsFinite(value)) throw new ArgumentException($"model {name}: hyperparameter {key} must be a finite number, got {value}");
            values[key] = value;
        }
        return values;
    }

    /// <summary>Builds a model by name; hyperparameters not given keep the model's defaults.</summary>
    public FerModel Create(string name, int numClasses, int side, IReadOnlyDictionary<string, double>? hyper = null) =>
        Get(name).Factory(numClasses, side, Resolve(name, hyper));
}

/// <summary>Fer's built-in models by name (the catalog without any flow's additions).</summary>
public static class ModelRegistry
{
    public static IReadOnlyList<string> Names => ModelCatalog.BuiltIn.Names;

    /// <summary>Builds a built-in model; hyperparameters are given as text (as a flow's settings carry them).</summary>
    public static FerModel Create(string name, int numClasses = 7, int side = 48, IReadOnlyDictionary<string, string>? hyper = null)
    {
        var parsed = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (key, text) in hyper ?? new Dictionary<string, string>())
        {
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || double.IsNaN(v))
                throw new ArgumentException($"model {name}: hyperparameter {key} must be a number, got '{text}'");
            parsed[key] = v;
        }
        return ModelCatalog.BuiltIn.Create(name, numClasses, side, parsed);
    }
}

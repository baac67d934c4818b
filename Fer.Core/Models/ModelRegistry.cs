using System.Globalization;

namespace Fer.Core.Models;

/// <summary>The models a flow can name, with their hyperparameters.</summary>
public static class ModelRegistry
{
    private sealed record Entry(string[] Hyperparameters, Func<int, int, Func<string, double, double>, FerModel> Create);

    private static readonly Dictionary<string, Entry> Entries = new(StringComparer.Ordinal)
    {
        ["seed-cnn"] = new(["conv_dropout", "dense_dropout"],
            (c, s, h) => new SeedCnn(c, s, h("conv_dropout", 0.3), h("dense_dropout", 0.5))),
        ["seed-dnn"] = new(["dropout"], (c, s, h) => new SeedDnn(c, s, h("dropout", 0.3))),
        ["vgg-bn"] = new(["width", "dropout"], (c, s, h) => new FerVgg(c, s, h("width", 1.0), h("dropout", 0.3))),
    };

    public static IReadOnlyList<string> Names { get; } = [.. Entries.Keys];

    public static IReadOnlyList<string> HyperparameterNames(string model) => Find(model).Hyperparameters;

    /// <summary>Builds a model by name; hyperparameters not given keep the model's defaults.</summary>
    public static FerModel Create(string name, int numClasses = 7, int side = 48, IReadOnlyDictionary<string, string>? hyper = null)
    {
        var entry = Find(name);
        hyper ??= new Dictionary<string, string>();
        foreach (var key in hyper.Keys)
            if (!entry.Hyperparameters.Contains(key))
                throw new ArgumentException(
                    $"model {name} has no hyperparameter '{key}'; its hyperparameters: {string.Join(", ", entry.Hyperparameters)}");
        double Get(string key, double fallback)
        {
            if (!hyper.TryGetValue(key, out var text)) return fallback;
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || double.IsNaN(v))
                throw new ArgumentException($"model {name}: hyperparameter {key} must be a number, got '{text}'");
            return v;
        }
        return entry.Create(numClasses, side, Get);
    }

    private static Entry Find(string name) => Entries.TryGetValue(name, out var e)
        ? e : throw new ArgumentException($"unknown model '{name}'; registered models: {string.Join(", ", Entries.Keys)}");
}

using System.Text.Json;
using Parquet.Schema;

namespace Fer.Core.Storage;

/// <summary>Predicted class probabilities of one split's images: ids, true labels (FaceSet.Unlabeled for none) and
/// row-major probabilities [images, classes].</summary>
public sealed record PredictionSplit(string Split, IReadOnlyList<long> Ids, IReadOnlyList<int> Labels, float[] Probabilities);

/// <summary>
/// Predictions as a table anyone can read without Fer (pandas, DuckDB, Spark): one row per image with columns
/// id, split, label (class name, null when unlabelled), predicted (class name of the highest probability) and one
/// float32 probability column per class, named after the class. Written atomically.
/// </summary>
public static class PredictionTable
{
    public const string Format = "fer-predictions-1";
    private static readonly string[] Fixed = ["id", "split", "label", "predicted"];

    /// <summary>The probability column of each class: its name, or p_NAME where the name is one of the fixed columns.</summary>
    public static IReadOnlyList<string> ProbabilityColumns(IReadOnlyList<string> classNames)
    {
        var columns = classNames.Select(n => Fixed.Contains(n, StringComparer.OrdinalIgnoreCase) ? "p_" + n : n).ToList();
        var duplicate = columns.GroupBy(c => c, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"class names give the probability column '{duplicate.Key}' twice");
        if (columns.Any(string.IsNullOrWhiteSpace)) throw new ArgumentException("a class name is empty");
        return columns;
    }

    public static async Task WriteAsync(string path, IReadOnlyList<string> classNames, IReadOnlyList<PredictionSplit> splits, CancellationToken ct = default)
    {
        int c = classNames.Count;
        var columns = ProbabilityColumns(classNames);
        foreach (var s in splits)
            if (s.Ids.Count != s.Labels.Count || (long)s.Ids.Count * c != s.Probabilities.LongLength)
                throw new ArgumentException($"split {s.Split}: {s.Ids.Count} ids, {s.Labels.Count} labels and {s.Probabilities.Length} probabilities do not make rows of {c} classes");
        var id = new DataField<long>("id");
        var split = new DataField<string>("split", nullable: false);
        var label = new DataField<string>("label", nullable: true);
        var predicted = new DataField<string>("predicted", nullable: false);
        var probabilities = columns.Select(n => new DataField<float>(n)).ToArray();
        var schema = new ParquetSchema([id, split, label, predicted, .. probabilities]);
        var meta = new Dictionary<string, string>
        {
            [ParquetTensorStore.FormatKey] = Format,
            [ParquetTensorStore.ClassNamesKey] = JsonSerializer.Serialize(classNames),
        };
        int rows = splits.Sum(s => s.Ids.Count);
        await ParquetTensorStore.WriteAtomicallyAsync(path, schema, meta, async rg =>
        {
            await rg.WriteAsync<long>(id, splits.SelectMany(s => s.Ids).ToArray().AsMemory(), null, null, ct);
            await rg.WriteAsync(split, splits.SelectMany(s => Enumerable.Repeat(s.Split, s.Ids.Count)).ToArray(), null);
            await rg.WriteAsync(label, splits.SelectMany(s => s.Labels.Select(l => l >= 0 && l < c ? classNames[l] : null)).ToArray()!, null);
            await rg.WriteAsync(predicted, splits.SelectMany(s => ArgMaxNames(s.Probabilities, classNames)).ToArray(), null);
            for (int k = 0; k < c; k++)
            {
                var column = new float[rows];
                int row = 0;
                foreach (var s in splits)
                    for (int i = 0; i < s.Ids.Count; i++) column[row++] = s.Probabilities[i * c + k];
                await rg.WriteAsync<float>(probabilities[k], column.AsMemory(), null, null, ct);
            }
        }, ct);
    }

    /// <summary>Reads a table written by <see cref="WriteAsync"/>: its class names and its splits in file order.</summary>
    public static async Task<(IReadOnlyList<string> ClassNames, IReadOnlyList<PredictionSplit> Splits)> ReadAsync(string path, CancellationToken ct = default) =>
        await ParquetTensorStore.ReadAsync(path, async (reader, meta) =>
        {
            if (meta.GetValueOrDefault(ParquetTensorStore.FormatKey) != Format)
                throw new InvalidDataException($"{path}: not a Fer predictions table (format '{meta.GetValueOrDefault(ParquetTensorStore.FormatKey) ?? "none"}')");
            var classNames = JsonSerializer.Deserialize<string[]>(meta.GetValueOrDefault(ParquetTensorStore.ClassNamesKey, "null"))
                ?? throw new InvalidDataException($"{path}: no class names");
            var fields = reader.Schema.DataFields;
            DataField Field(string name) => fields.FirstOrDefault(f => f.Name == name)
                ?? throw new InvalidDataException($"{path}: column '{name}' is missing");
            var columns = ProbabilityColumns(classNames);
            var order = new List<string>();
            var bySplit = new Dictionary<string, (List<long> Ids, List<int> Labels, List<float> P)>();
            for (int g = 0; g < reader.RowGroupCount; g++)
            {
                using var rg = reader.OpenRowGroupReader(g);
                int n = checked((int)rg.RowCount);
                var id = new long[n]; await rg.ReadAsync<long>(Field("id"), id.AsMemory(), null, ct);
                var split = new string?[n]; await rg.ReadAsync(Field("split"), split.AsMemory(), null, ct);
                var label = new string?[n]; await rg.ReadAsync(Field("label"), label.AsMemory(), null, ct);
                var p = new float[columns.Count][];
                for (int k = 0; k < columns.Count; k++) { p[k] = new float[n]; await rg.ReadAsync<float>(Field(columns[k]), p[k].AsMemory(), null, ct); }
                for (int i = 0; i < n; i++)
                {
                    var name = split[i] ?? throw new InvalidDataException($"{path}: row {i} has no split");
                    if (!bySplit.TryGetValue(name, out var rows)) { bySplit[name] = rows = ([], [], []); order.Add(name); }
                    rows.Ids.Add(id[i]);
                    rows.Labels.Add(label[i] is { } l ? Array.IndexOf(classNames, l) : -1);
                    for (int k = 0; k < columns.Count; k++) rows.P.Add(p[k][i]);
                }
            }
            IReadOnlyList<PredictionSplit> splits = [.. order.Select(s => new PredictionSplit(s, bySplit[s].Ids, bySplit[s].Labels, [.. bySplit[s].P]))];
            return ((IReadOnlyList<string>)classNames, splits);
        }, ct);

    private static IEnumerable<string> ArgMaxNames(float[] p, IReadOnlyList<string> classNames)
    {
        int c = classNames.Count;
        for (int i = 0; i < p.Length / c; i++)
        {
            int best = 0;
            for (int k = 1; k < c; k++) if (p[i * c + k] > p[i * c + best]) best = k;
            yield return classNames[best];
        }
    }
}

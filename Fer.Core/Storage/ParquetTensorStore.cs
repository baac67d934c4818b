using System.Text.Json;
using Fer.Core.Data;
using Parquet;
using Parquet.Schema;

namespace Fer.Core.Storage;

/// <summary>A float tensor read back from Parquet: row-major data, its shape and the file's metadata.</summary>
public sealed record StoredTensor(float[] Data, int[] Shape, IReadOnlyDictionary<string, string> Metadata);

/// <summary>What a face table's metadata says about its images: their side and the class names of its labels.</summary>
public sealed record FaceTableInfo(int Side, IReadOnlyList<string> ClassNames);

/// <summary>
/// Datasets and tensors as Parquet files. A face set is a table (id, label nullable, source_id, flipped, usage by
/// name as Kaggle writes it: Training, PublicTest, PrivateTest, Test; pixels as bytes) with side and class names in
/// the file metadata (files of the first format, usage as a number, are still read). A float tensor is one row per index of its
/// first dimension, each a list of float32 of fixed length, with the shape in the metadata. Round trips are
/// bit-exact. Files are written to a temporary name and renamed into place.
/// </summary>
public static class ParquetTensorStore
{
    internal const string FormatKey = "fer.format", SideKey = "fer.side", ClassNamesKey = "fer.class_names", ShapeKey = "fer.shape";
    private const string FacesFormat = "fer-faces-2", FacesFormatV1 = "fer-faces-1", TensorFormat = "fer-tensor-1";

    private static readonly DataField<long> IdField = new("id");
    private static readonly DataField<int?> LabelField = new("label");
    private static readonly DataField<long> SourceField = new("source_id");
    private static readonly DataField<bool> FlippedField = new("flipped");
    private static readonly DataField<string> UsageField = new("usage", nullable: false);
    private static readonly DataField<byte[]> PixelsField = new("pixels");
    private static readonly ParquetSchema FacesSchema = new(IdField, LabelField, SourceField, FlippedField, UsageField, PixelsField);

    public static async Task WriteFacesAsync(string path, FaceSet faces, IReadOnlyDictionary<string, string>? metadata = null, CancellationToken ct = default)
    {
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>())
        {
            [FormatKey] = FacesFormat,
            [SideKey] = faces.Side.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [ClassNamesKey] = JsonSerializer.Serialize(faces.ClassNames),
        };
        await WriteAtomicallyAsync(path, FacesSchema, meta, async rg =>
        {
            int n = faces.Count, p = faces.PixelsPerImage;
            await rg.WriteAsync<long>(IdField, faces.Ids.AsMemory(), null, null, ct);
            await rg.WriteAsync<int>(LabelField, faces.Labels.Select(l => l == FaceSet.Unlabeled ? (int?)null : l).ToArray().AsMemory(), null, null, ct);
            await rg.WriteAsync<long>(SourceField, faces.SourceIds.AsMemory(), null, null, ct);
            await rg.WriteAsync<bool>(FlippedField, faces.Flipped.AsMemory(), null, null, ct);
            await rg.WriteAsync(UsageField, faces.Usage.Select(u => u.ToString()).ToArray(), null);
            var images = new byte[n][];
            for (int i = 0; i < n; i++) images[i] = faces.Pixels.AsSpan(i * p, p).ToArray();
            await rg.WriteAsync(PixelsField, images, null);
        }, ct);
    }

    public static async Task<FaceSet> ReadFacesAsync(string path, CancellationToken ct = default)
    {
        return await ReadAsync(path, async (reader, meta) =>
        {
            var (side, classes) = FacesHeader(path, meta);
            var fields = reader.Schema.DataFields;
            DataField Field(string name) => fields.FirstOrDefault(f => f.Name == name)
                ?? throw new InvalidDataException($"{path}: column '{name}' is missing");
            var ids = new List<long>(); var labels = new List<int>(); var sources = new List<long>();
            var flipped = new List<bool>(); var usage = new List<FaceUsage>(); var pixels = new MemoryStream();
            int p = side * side;
            for (int g = 0; g < reader.RowGroupCount; g++)
            {
                using var rg = reader.OpenRowGroupReader(g);
                int n = checked((int)rg.RowCount);
                var id = new long[n]; await rg.ReadAsync<long>(Field("id"), id.AsMemory(), null, ct);
                var label = new int?[n]; await rg.ReadAsync<int>(Field("label"), label.AsMemory(), null, ct);
                var src = new long[n]; await rg.ReadAsync<long>(Field("source_id"), src.AsMemory(), null, ct);
                var flip = new bool[n]; await rg.ReadAsync<bool>(Field("flipped"), flip.AsMemory(), null, ct);
                var use = await ReadUsageAsync(path, rg, Field("usage"), n, ids.Count, ct);
                var img = new byte[]?[n]; await rg.ReadAsync(Field("pixels"), img.AsMemory(), null, ct);
                for (int i = 0; i < n; i++)
                {
                    if (img[i] is not { Length: var length } || length != p)
                        throw new InvalidDataException($"{path}: row {ids.Count} has {img[i]?.Length ?? 0} pixels, expected {p}");
                    pixels.Write(img[i]!);
                    ids.Add(id[i]); labels.Add(label[i] ?? FaceSet.Unlabeled); sources.Add(src[i]); flipped.Add(flip[i]); usage.Add(use[i]);
                }
            }
            return new FaceSet(side, classes, [.. ids], [.. labels], [.. sources], [.. flipped], [.. usage], pixels.ToArray());
        }, ct);
    }

    /// <summary>A face table's image side and class names, read from its metadata without reading its rows.</summary>
    public static Task<FaceTableInfo> ReadFaceTableInfoAsync(string path, CancellationToken ct = default) =>
        ReadAsync(path, (_, meta) => Task.FromResult(FacesHeader(path, meta)), ct);

    private static FaceTableInfo FacesHeader(string path, Dictionary<string, string> meta)
    {
        if (meta.GetValueOrDefault(FormatKey) != FacesFormatV1) Expect(path, meta, FacesFormat);
        if (!meta.TryGetValue(SideKey, out var sideText) || !int.TryParse(sideText, out var side) || side <= 0)
            throw new InvalidDataException($"{path}: missing or bad {SideKey} metadata");
        string[] classes;
        try { classes = JsonSerializer.Deserialize<string[]>(meta.GetValueOrDefault(ClassNamesKey, "[]")) ?? []; }
        catch (JsonException e) { throw new InvalidDataException($"{path}: bad {ClassNamesKey} metadata ({e.Message})", e); }
        return new FaceTableInfo(side, classes);
    }

    /// <summary>The usage column: names (fer-faces-2) or, in files of the first format, enum numbers.</summary>
    private static async Task<FaceUsage[]> ReadUsageAsync(string path, ParquetRowGroupReader rg, DataField field, int n, int firstRow, CancellationToken ct)
    {
        var result = new FaceUsage[n];
        if (field.ClrType == typeof(int))
        {
            var numbers = new int[n];
            await rg.ReadAsync<int>(field, numbers.AsMemory(), null, ct);
            for (int i = 0; i < n; i++)
                result[i] = Enum.IsDefined((FaceUsage)numbers[i]) ? (FaceUsage)numbers[i]
                    : throw new InvalidDataException($"{path}: row {firstRow + i} has unknown usage {numbers[i]}");
            return result;
        }
        var names = new string?[n];
        await rg.ReadAsync(field, names.AsMemory(), null, ct);
        for (int i = 0; i < n; i++)
            result[i] = names[i] is { } name && Enum.TryParse<FaceUsage>(name, ignoreCase: false, out var u) && Enum.IsDefined(u) && !char.IsDigit(name[0]) ? u
                : throw new InvalidDataException($"{path}: row {firstRow + i} has unknown usage '{names[i]}'; known: {string.Join(", ", Enum.GetNames<FaceUsage>())}");
        return result;
    }

    public static async Task WriteTensorAsync(string path, float[] data, int[] shape, IReadOnlyDictionary<string, string>? metadata = null, CancellationToken ct = default)
    {
        if (shape.Length == 0 || shape.Any(d => d < 0)) throw new ArgumentException("shape needs at least one non-negative dimension", nameof(shape));
        long expected = shape.Aggregate(1L, (a, d) => a * d);
        if (expected != data.LongLength) throw new ArgumentException($"shape [{string.Join(", ", shape)}] holds {expected} values, data has {data.LongLength}");
        int rows = shape[0], rowLength = rows == 0 ? 0 : data.Length / rows;
        var list = new ListField("values", typeof(float));
        var leaf = (DataField)list.Item;
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>())
        {
            [FormatKey] = TensorFormat,
            [ShapeKey] = JsonSerializer.Serialize(shape),
        };
        await WriteAtomicallyAsync(path, new ParquetSchema(list), meta, async rg =>
        {
            if (rows == 0 || rowLength == 0) return;
            var repetition = new int[data.Length];
            for (int i = 0; i < data.Length; i++) repetition[i] = i % rowLength == 0 ? 0 : 1;
            var definition = new int[data.Length];
            Array.Fill(definition, leaf.MaxDefinitionLevel);
            await rg.WriteAllPartsAsync<float>(leaf, data.AsMemory(), definition.AsMemory(), repetition.AsMemory(), ct);
        }, ct);
    }

    public static async Task<StoredTensor> ReadTensorAsync(string path, CancellationToken ct = default)
    {
        return await ReadAsync(path, async (reader, meta) =>
        {
            Expect(path, meta, TensorFormat);
            var shape = JsonSerializer.Deserialize<int[]>(meta.GetValueOrDefault(ShapeKey, "null"))
                ?? throw new InvalidDataException($"{path}: missing fer.shape metadata");
            long total = shape.Aggregate(1L, (a, d) => a * d);
            var data = new float[total];
            var leaf = reader.Schema.DataFields.FirstOrDefault()
                ?? throw new InvalidDataException($"{path}: no values column");
            long offset = 0;
            for (int g = 0; g < reader.RowGroupCount && total > 0; g++)
            {
                using var rg = reader.OpenRowGroupReader(g);
                int count = checked((int)(total - offset));
                var values = new float[count]; var def = new int[count]; var rep = new int[count];
                await rg.ReadRawAsync<float>(leaf, values.AsMemory(), def.AsMemory(), rep.AsMemory(), ct);
                values.CopyTo(data, offset);
                offset += count;
            }
            return new StoredTensor(data, shape, meta);
        }, ct);
    }

    public static Task<IReadOnlyDictionary<string, string>> ReadMetadataAsync(string path, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyDictionary<string, string>>(path, (_, meta) => Task.FromResult<IReadOnlyDictionary<string, string>>(meta), ct);

    internal static void Expect(string path, Dictionary<string, string> meta, string format)
    {
        if (meta.GetValueOrDefault(FormatKey) != format)
            throw new InvalidDataException($"{path}: not a Fer {(format == FacesFormat ? "face set" : "tensor")} file (format '{meta.GetValueOrDefault(FormatKey) ?? "none"}')");
    }

    internal static async Task WriteAtomicallyAsync(string path, ParquetSchema schema, Dictionary<string, string> meta,
        Func<ParquetRowGroupWriter, Task> writeColumns, CancellationToken ct)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                await using var writer = await ParquetWriter.CreateAsync(schema, stream, null, false, ct);
                writer.CustomMetadata = meta;
                using (var rg = writer.CreateRowGroup())
                    await writeColumns(rg);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }

    internal static async Task<T> ReadAsync<T>(string path, Func<ParquetReader, Dictionary<string, string>, Task<T>> read, CancellationToken ct)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        try
        {
            await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            await using var reader = await ParquetReader.CreateAsync(stream, null, false, ct);
            return await read(reader, reader.CustomMetadata ?? []);
        }
        catch (Exception e) when (e is not InvalidDataException and not OperationCanceledException and not FileNotFoundException)
        {
            throw new InvalidDataException($"{path}: not a readable Parquet file ({e.GetType().Name}: {e.Message})", e);
        }
    }
}

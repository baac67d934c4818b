using System.Text.Json;
using System.Text.Json.Serialization;
using Fer.Core.Data;
using Fer.Core.Storage;

namespace Fer.Flow.Pipeline;

/// <summary>
/// A file inside a stage's cache entry, as a stage's typed output refers to it. Consumers use the handle, never
/// a file name: the producing stage alone names its files. In output.json a handle is stored relative to its
/// entry and read back only if it stays inside it.
/// </summary>
public interface IEntryFile
{
    string Path { get; }
}

/// <summary>A Parquet table of faces (pixels, labels, ids, usage, mirror flags).</summary>
public sealed record FaceTable(string Path) : IEntryFile
{
    public Task<FaceSet> ReadAsync(CancellationToken ct = default) => ParquetTensorStore.ReadFacesAsync(Path, ct);

    public static async Task<FaceTable> WriteAsync(StageContext ctx, string name, FaceSet faces)
    {
        var path = ctx.OutputPath(name);
        await ParquetTensorStore.WriteFacesAsync(path, faces, ct: ctx.CancellationToken);
        return new FaceTable(path);
    }
}

/// <summary>A float tensor stored as Parquet (shape and metadata in the file).</summary>
public sealed record TensorFile(string Path) : IEntryFile
{
    public Task<StoredTensor> ReadAsync(CancellationToken ct = default) => ParquetTensorStore.ReadTensorAsync(Path, ct);
}

/// <summary>A model's weights (TorchSharp format).</summary>
public sealed record WeightsFile(string Path) : IEntryFile;

/// <summary>A training history (one row per epoch, Parquet).</summary>
public sealed record HistoryFile(string Path) : IEntryFile
{
    public Task<IReadOnlyList<Fer.Core.Training.EpochRecord>> ReadAsync(CancellationToken ct = default) =>
        Fer.Core.Training.TrainingHistoryStore.ReadAsync(Path, ct);
}

/// <summary>A figure (PNG) published into the run's figures/ folder.</summary>
public sealed record FigureFile(string Path) : IEntryFile
{
    public string FileName => System.IO.Path.GetFileName(Path);
}

/// <summary>Any other file of an entry (text, CSV); published ones are copied into the run folder.</summary>
public sealed record DataFile(string Path) : IEntryFile;

/// <summary>Reads and writes a stage's typed output as output.json, handles relative to the entry.</summary>
public static class OutputStore
{
    public const string FileName = "output.json";

    public static void Write(object output, string entryDir)
    {
        var path = System.IO.Path.Combine(entryDir, FileName);
        File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(output, output.GetType(), Options(entryDir)));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    public static object Read(Type type, string entryDir)
    {
        var path = System.IO.Path.Combine(entryDir, FileName);
        try
        {
            return JsonSerializer.Deserialize(Fer.Core.Storage.BoundedFile.ReadAllText(path, 16 << 20, "stage's output record"), type, Options(entryDir))
                   ?? throw new InvalidDataException($"{path}: empty output record");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    public static JsonSerializerOptions Options(string entryDir) => new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new EntryFileConverter(entryDir) },
    };

    /// <summary>Serialises handles relative to the entry; on read, refuses any that would leave it.</summary>
    private sealed class EntryFileConverter(string entryDir) : JsonConverterFactory
    {
        public override bool CanConvert(Type t) => typeof(IEntryFile).IsAssignableFrom(t);

        public override JsonConverter CreateConverter(Type t, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(Converter<>).MakeGenericType(t), entryDir)!;

        private sealed class Converter<T>(string entryDir) : JsonConverter<T> where T : IEntryFile
        {
            public override T Read(ref Utf8JsonReader reader, Type t, JsonSerializerOptions options)
            {
                var relative = reader.GetString() ?? throw new JsonException("a file handle is null");
                var root = System.IO.Path.GetFullPath(entryDir);
                var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(root, relative));
                if (System.IO.Path.IsPathRooted(relative) || !full.StartsWith(root + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal))
                    throw new JsonException($"file handle '{relative}' leaves its cache entry");
                return (T)Activator.CreateInstance(typeof(T), full)!;
            }

            public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) =>
                writer.WriteStringValue(System.IO.Path.GetRelativePath(entryDir, value.Path).Replace('\\', '/'));
        }
    }
}
